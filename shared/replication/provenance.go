package replication

import (
	"fmt"
	"strings"
	"time"
)

// Provenance: how dimirror marks what it copies, and how it recognises its own copies. Every part
// that asks "does this target model hold this source version?" or "did dimirror make this?" (the
// engine, reconciliation, the drill, the CLI through the engine) asks here.
//
// A model copy carries the tags of its authorizeCopy request (TagSource, TagSourceCreated).
// Classifiers carry no tags; every api-version keeps the source's expirationDateTime in the copy
// (and through 2023-07-31 its createdDateTime too), which identifies the source version.
const (
	TagSource        = "dimirror-source"
	TagSourceCreated = "dimirror-source-created"
)

// SourceTag is the TagSource value of a copy of kind/id from the source named sourceName (its
// endpoint host).
func SourceTag(sourceName string, kind Kind, id string) string {
	return fmt.Sprintf("%s/%s/%s", sourceName, kind, id)
}

// CopyTags are the tags a copy of this source version carries, when the source is the origin.
func CopyTags(sourceName string, kind Kind, id string, created time.Time) map[string]string {
	return OriginTags(SourceTag(sourceName, kind, id), created)
}

// OriginTags are the tags of every copy of the origin item tagged origin, created at created:
// a copy of a copy carries its origin's tags unchanged, so every resource along a chain or a
// mesh recognises the item, and no rule ever copies it back into its origin.
func OriginTags(origin string, created time.Time) map[string]string {
	return map[string]string{
		TagSource:        origin,
		TagSourceCreated: created.UTC().Format(time.RFC3339),
	}
}

// TaggedOrigin reads the origin dimirror's tags name on a copy; ok is false for an item without
// them (an original, or a classifier).
func TaggedOrigin(tags map[string]string) (Origin, bool) {
	tag, ok := tags[TagSource]
	if !ok || tag == "" {
		return Origin{}, false
	}
	created, err := time.Parse(time.RFC3339, tags[TagSourceCreated])
	if err != nil {
		return Origin{}, false
	}
	return Origin{Tag: tag, Created: created.UTC(), Copy: true}, true
}

// OriginHost is the resource host part of a TagSource value ("<host>/<kind>/<id>").
func OriginHost(origin string) string {
	h, _, _ := strings.Cut(origin, "/")
	return h
}

// originDescription says what a target model's origin is, for messages.
func originDescription(m Model, target string) string {
	if tag, ok := m.Tags[TagSource]; ok {
		return "a copy of " + tag
	}
	return "not copied by dimirror: trained in " + target + " or copied there by someone else"
}

// HoldsVersion reports whether target model m is a copy of the source version created at
// created, expiring at expires: dimirror's tag when it has one, else the preserved expiry, else
// the preserved creation time.
func HoldsVersion(m Model, created, expires time.Time) bool {
	if v, ok := m.Tags[TagSourceCreated]; ok {
		return v == created.UTC().Format(time.RFC3339)
	}
	if !expires.IsZero() && !m.Expires.IsZero() {
		return expires.Equal(m.Expires)
	}
	return created.Equal(m.Created)
}

// holdsSource reports whether a target model is a copy of the origin version r was made from: a
// model tagged with another origin is not, whatever its dates say.
func holdsSource(r *Replica, origin string, m Model) bool {
	if tag, ok := m.Tags[TagSource]; ok && tag != origin {
		return false
	}
	return HoldsVersion(m, r.SourceCreated, r.SourceExpires)
}

// sameVersion reports whether replica r was made from this version of the source.
func sameVersion(r *Replica, src Model) bool {
	if !r.SourceExpires.IsZero() && !src.Expires.IsZero() {
		return r.SourceExpires.Equal(src.Expires) && r.SourceCreated.Equal(src.Created)
	}
	return r.SourceCreated.Equal(src.Created)
}

// MadeBy reports whether dimirror can prove target model m is its own copy of the source item
// sourceTag names: a model by its TagSource tag; a classifier (no tags) by carrying the expiry
// of the copy dimirror last verified for that item (copyExpires, from its replica row). Only
// what this proves may be deleted or replaced: anything else in a target is someone else's.
func MadeBy(m Model, kind Kind, sourceTag string, copyExpires time.Time) bool {
	if v, ok := m.Tags[TagSource]; ok {
		return v == sourceTag
	}
	if kind == KindClassifier && !copyExpires.IsZero() && !m.Expires.IsZero() {
		return copyExpires.Equal(m.Expires)
	}
	return false
}
