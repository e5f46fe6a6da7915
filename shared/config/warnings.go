package config

import (
	"fmt"

	"github.com/dimirror/dimirror/shared/docintel"
)

// Warnings lists settings that work but will surprise: resource pairs on different api-versions
// (a copy between them works — the authorization's wire format is the same from 2022-08-31 on —
// but classifiers can be copied only between 2024-11-30 resources, and a model built with a
// newer api-version may not be readable through an older one). The app logs each at start-up.
func (c *Config) Warnings() []string {
	var out []string
	src := c.Source.APIVersion
	for _, t := range c.Targets {
		if t.APIVersion == src || t.APIVersion == docintel.V2_1 || src == docintel.V2_1 {
			continue // v2.1 with v3+ is refused by validation
		}
		w := fmt.Sprintf("target %s uses api-version %s and the source %s: models copy between them, but a model built with a newer api-version may not be readable through an older one; use the same api-version on both", t.Name, t.APIVersion, src)
		if t.APIVersion != docintel.V2024_11_30 || src != docintel.V2024_11_30 {
			w += fmt.Sprintf("; classifiers copy only between 2024-11-30 resources, so classifier replicas into %s will fail", t.Name)
		}
		out = append(out, w)
	}
	return out
}
