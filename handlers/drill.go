package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/dimirror/dimirror/shared/drill"
)

// driller is what the drill function calls.
type driller interface {
	Run(ctx context.Context) (*drill.Report, error)
}

var _ driller = (*drill.Drill)(nil)

// defaultDrillTimeout bounds one drill: it lists every resource and reads each selected item's
// details in the source and in every target, paced at the list rate; within the Functions front
// end's 230 s.
const defaultDrillTimeout = 3 * time.Minute

// Drill handles GET /api/drill: whether each target could serve now (drill.Report). The answer
// is 200 whatever the verdict (ready is in the body, every reason listed); a source that cannot
// be read is an error answer.
func (a *Functions) Drill(w http.ResponseWriter, r *http.Request) {
	if a.Driller == nil {
		a.writeError(w, r, &apiError{Kind: eNotImplemented, Code: "NotConfigured", Message: "the drill is not configured in this app"})
		return
	}
	if len(r.URL.Query()) > 0 {
		for k := range r.URL.Query() {
			if k != "code" {
				a.writeError(w, r, invalid(k, "the drill takes no parameters; remove %s", k))
				return
			}
		}
	}
	rep, err := a.Driller.Run(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
