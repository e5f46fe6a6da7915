package didev

import "net/http"

// The shape shared by the v3/v4 handlers: create requests, builds and id-ordered lists.

// newItemRequest is a request that creates an item: it names the id asked for (and the
// parameter that carries it) and the description, which every create request may send.
type newItemRequest interface {
	newItem(kind Kind) (param, id string, description *string)
}

// decodeNewItem decodes req and checks its id and description, in that order.
func (c *call) decodeNewItem(req newItemRequest, kind Kind) (string, *httpError) {
	if e := c.decodeBody(req); e != nil {
		return "", e
	}
	param, id, desc := req.newItem(kind)
	if e := validateID(param, id); e != nil {
		return "", e
	}
	return id, validateDescription(desc)
}

// admit makes room for a new item of kind: a taken id is 409 ModelExists unless overwrite
// replaces an existing item (2024-07-31-preview on), which goes when the rebuild is accepted;
// a new model must also fit under the model limit.
func (c *call) admit(kind Kind, id string, overwrite bool) *httpError {
	if c.st.taken(kind, id) {
		if !(overwrite && c.v.newCompose && c.st.get(kind, id, c.now) != nil) {
			return errModelExists()
		}
		c.s.delModel(c.res.key, kind, id)
	}
	if kind == KindModel {
		return c.quotaErr()
	}
	return nil
}

// startBuild stores m as what op makes and answers 202 with the operation's URL.
func (c *call) startBuild(op *operation, m *model) *response {
	op.Result = m
	op.ResourceLocation = c.location(collectionOf(m.Kind), m.ID)
	c.s.putModel(c.res.key, m)
	c.s.putOp(c.res.key, op)
	return accepted("operation-location", c.operationLocation(op.ID)) // builds spell it lowercase [rec]
}

// listPage answers a list request paged in id order. idsAfter lists the ids after the cursor,
// at least size+1 of them when there is a next page; render makes one listed item.
func (c *call) listPage(collection string, idsAfter func(cur string, size int) []string, render func(id string) any) *response {
	cur, herr := c.cursor()
	if herr != nil {
		return errResp(herr)
	}
	size := c.s.opts.PageSize
	ids := idsAfter(cur, size)
	out := pageOut{Value: []any{}}
	for _, id := range ids[:min(len(ids), size)] {
		out.Value = append(out.Value, render(id))
	}
	if len(ids) > size {
		out.NextLink = c.nextLink(c.v.family.prefix()+"/"+collection, ids[size-1])
	}
	return jsonResp(http.StatusOK, out)
}
