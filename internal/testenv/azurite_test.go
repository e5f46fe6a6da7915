package testenv

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestAzuriteStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := StartAzurite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(a.TableURL() + "/Tables")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 0 {
		t.Fatal("no answer from azurite")
	}
	a.Stop()
	if _, err := http.Get(a.TableURL() + "/Tables"); err == nil {
		t.Error("azurite still answers after Stop")
	}
}
