package devup

import "syscall"

// setDeathSignal has the kernel send sig to the child when devup dies. (It is tied to the OS
// thread that started the child; Go keeps its threads, so in practice to devup.)
func setDeathSignal(a *syscall.SysProcAttr, sig syscall.Signal) { a.Pdeathsig = sig }
