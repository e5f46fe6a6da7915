package didev

import (
	"encoding/json"
	"time"
)

// The details of built and seeded items are those of the recorded live models: the recorded
// template model trained on the SDK's purchase-order forms (its field schema, in the service's
// order, and its field confidences), and the recorded IRS classifier's document types.

var recordedFieldSchema = json.RawMessage(`{"Merchant":{"type":"string"},"PhoneNumber":{"type":"string"},"Website":{"type":"string"},"Email":{"type":"string"},"PurchaseOrderNumber":{"type":"string"},"DatedAs":{"type":"string"},"VendorName":{"type":"string"},"CompanyName":{"type":"string"},"CompanyAddress":{"type":"string"},"CompanyPhoneNumber":{"type":"string"},"Subtotal":{"type":"string"},"Tax":{"type":"string"},"Total":{"type":"string"},"Signature":{"type":"string"},"Quantity":{"type":"number"},"FullSignature":{"type":"signature"}}`)

var recordedFieldConfidence = map[string]float64{
	"CompanyAddress": 0.8, "CompanyName": 0.995, "CompanyPhoneNumber": 0.995, "DatedAs": 0.995,
	"Email": 0.8, "FullSignature": 0.6, "Merchant": 0.995, "PhoneNumber": 0.995,
	"PurchaseOrderNumber": 0.995, "Quantity": 0.995, "Signature": 0.995, "Subtotal": 0.995,
	"Tax": 0.995, "Total": 0.995, "VendorName": 0.995, "Website": 0.995,
}

// v2.1 labeled training reports per-field accuracy (recorded order).
var recordedV2Fields = []struct {
	Name     string
	Accuracy float64
}{
	{"CompanyAddress", 0.8}, {"CompanyName", 0.995}, {"CompanyPhoneNumber", 0.995}, {"DatedAs", 0.995},
	{"Email", 0.8}, {"Merchant", 0.995}, {"PhoneNumber", 0.995}, {"PurchaseOrderNumber", 0.995},
	{"Quantity", 0.995}, {"Signature", 0.8}, {"Subtotal", 0.995}, {"Tax", 0.995}, {"Total", 0.995},
	{"VendorName", 0.995}, {"Website", 0.995},
}

// v2.1 unlabeled training reports key clusters (recorded).
var recordedV2Keys = []string{
	"Additional Notes:", "Address:", "Company Name:", "Company Phone:", "Dated As:", "Details", "Email:",
	"Ft Lauderdale, FL Phone:", "Hero Limited", "Name:", "Phone:", "Purchase Order", "Purchase Order #:",
	"Quantity", "SUBTOTAL", "Seattle, WA 93849 Phone:", "Shipped From", "Shipped To", "TAX", "TOTAL",
	"Total", "Unit Price", "Vendor Name:", "Website:",
}

const seedContainer = "https://didev.blob.core.windows.net/training"

// newTemplateModel is a ready-trained template model named id, created at created.
func newTemplateModel(id, apiVersion string, created time.Time) *model {
	return &model{
		Kind:       KindModel,
		ID:         id,
		APIVersion: apiVersion,
		Created:    created,
		Expires:    created.Add(modelLifetime),
		Ready:      created,
		BuildMode:  "template",
		DocTypes: map[string]*docType{id: {
			BuildMode:       "template",
			FieldSchema:     recordedFieldSchema,
			FieldConfidence: recordedFieldConfidence,
		}},
	}
}

// newSeedClassifier is a ready classifier with the recorded IRS document types.
func newSeedClassifier(id, apiVersion string, created time.Time) *model {
	classes := map[string]*classDoc{}
	for _, c := range []string{"IRS-1040-A", "IRS-1040-B", "IRS-1040-C", "IRS-1040-D", "IRS-1040-E"} {
		classes[c] = &classDoc{Blob: &blobSource{ContainerURL: seedContainer, Prefix: c + "/train"}}
	}
	return &model{
		Kind:       KindClassifier,
		ID:         id,
		APIVersion: apiVersion,
		Created:    created,
		Modified:   created,
		Expires:    created.Add(modelLifetime),
		Ready:      created,
		Classes:    classes,
	}
}

// newV2Model is a v2.1 model trained with labels (or without), ready at ready.
func newV2Model(id string, created, ready time.Time, labeled bool, name string) *model {
	return &model{
		Kind:       KindModelV21,
		ID:         id,
		APIVersion: "2.1",
		Created:    created,
		Expires:    created.Add(modelLifetime),
		Ready:      ready,
		V2:         &v2Info{Labeled: labeled, Name: name},
	}
}

// seedModel builds the item a Seed describes.
func seedModel(sd Seed, now time.Time) *model {
	v := sd.APIVersion
	if v == "" {
		v = "2024-11-30"
	}
	var m *model
	switch sd.Kind {
	case KindClassifier:
		m = newSeedClassifier(sd.ID, v, now)
	case KindModelV21:
		m = newV2Model(sd.ID, now, now, true, "")
	default:
		m = newTemplateModel(sd.ID, v, now)
	}
	m.Description = sd.Description
	m.Tags = cloneTags(sd.Tags)
	return m
}
