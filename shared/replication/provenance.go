package replication

import (
	"fmt"
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

// CopyTags are the tags a copy of this source version carries.
func CopyTags(sourceName string, kind Kind, id string, created time.Time) map[string]string {
	return map[string]string{
		TagSource:        SourceTag(sourceName, kind, id),
		TagSourceCreated: created.UTC().Format(time.RFC3339),
	}
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

// holdsSource reports whether a target model is a copy of the source version r was made from.
func holdsSource(r *Replica, m Model) bool { return HoldsVersion(m, r.SourceCreated, r.SourceExpires) }

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
