package config

import (
	"strings"
	"testing"

	"github.com/dimirror/dimirror/shared/docintel"
)

func TestWarningsForMixedAPIVersions(t *testing.T) {
	tests := []struct {
		name        string
		src, tgt    docintel.APIVersion
		want        int
		classifiers bool
	}{
		{"same version", docintel.V2024_11_30, docintel.V2024_11_30, 0, false},
		{"newer source, older target", docintel.V2024_11_30, docintel.V2022_08_31, 1, true},
		{"older source", docintel.V2023_07_31, docintel.V2024_11_30, 1, true},
		{"v2.1 pair", docintel.V2_1, docintel.V2_1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Source: Source{APIVersion: tt.src}, Targets: []Target{{Name: "westus2", APIVersion: tt.tgt}}}
			w := c.Warnings()
			if len(w) != tt.want {
				t.Fatalf("warnings %q, want %d", w, tt.want)
			}
			if tt.want > 0 && strings.Contains(w[0], "classifier replicas into westus2 will fail") != tt.classifiers {
				t.Errorf("warning %q: classifier note should be %v", w[0], tt.classifiers)
			}
		})
	}
}
