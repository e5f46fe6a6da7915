package devbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/emulators/devbus"
)

// BenchmarkSendReceiveComplete measures messages per second through devbus on loopback
// with the real SDK: sent, received in peek-lock mode and completed.
func BenchmarkSendReceiveComplete(b *testing.B) {
	cases := []struct {
		name    string
		batched bool
		disk    bool
	}{
		{"batched-sends/memory", true, false},
		{"batched-sends/data-dir", true, true},
		{"single-sends/memory", false, false},
		{"single-sends/data-dir", false, true},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			opts := devbus.Options{}
			if bc.disk {
				opts.DataDir = b.TempDir()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			broker, err := devbus.Start(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer broker.Close()
			client, err := azservicebus.NewClientFromConnectionString(broker.ConnectionString(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close(ctx)
			sender, err := client.NewSender("bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			receiver, err := client.NewReceiverForQueue("bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"sourceRegion":"westeurope","targetRegion":"northeurope","modelId":"invoice-model-0001"}`)

			b.ResetTimer()
			start := time.Now()
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error {
				if bc.batched {
					return sendBatches(gctx, sender, "bench", b.N)
				}
				for i := range b.N {
					if err := sender.SendMessage(gctx, &azservicebus.Message{Body: body}, nil); err != nil {
						return fmt.Errorf("send %d: %w", i, err)
					}
				}
				return nil
			})
			g.Go(func() error {
				for done := 0; done < b.N; {
					msgs, err := receiver.ReceiveMessages(gctx, min(100, b.N-done), nil)
					if err != nil {
						return err
					}
					cg, cctx := errgroup.WithContext(gctx)
					cg.SetLimit(8)
					for _, m := range msgs {
						cg.Go(func() error { return receiver.CompleteMessage(cctx, m, nil) })
					}
					if err := cg.Wait(); err != nil {
						return err
					}
					done += len(msgs)
				}
				return nil
			})
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
