package faultproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ControlPath is the prefix of the proxy's control endpoint on its own
// address:
//
//	GET    /autoami-faults/rules   the rules in force, as {"rules": [...]}
//	PUT    /autoami-faults/rules   replace them (same document; 400 naming the
//	                               field on a bad one, rules left unchanged)
//	DELETE /autoami-faults/rules   remove all rules
//	GET    /autoami-faults/stats   {"actions": {"ec2:RunInstances": {"calls": 3, ...}}}
//	DELETE /autoami-faults/stats   zero the counters
//
// Only unsigned requests are control requests, so a signed S3 call to a
// bucket named "autoami-faults" still goes to the server.
const ControlPath = "/autoami-faults/"

// maxControlBody bounds a rules document sent to the control endpoint.
const maxControlBody = 1 << 20

// statsDoc is the answer of GET /autoami-faults/stats.
type statsDoc struct {
	Actions map[string]Stat `json:"actions"`
}

func isControl(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, ControlPath) && credentialScope(r) == nil && r.URL.Query().Get("AWSAccessKeyId") == ""
}

func (p *Proxy) serveControl(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, ControlPath) {
	case "rules":
		switch r.Method {
		case http.MethodGet:
			p.writeRules(w, http.StatusOK)
		case http.MethodPut:
			body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
			if err != nil {
				controlError(w, http.StatusBadRequest, fmt.Sprintf("read the rules document: %v", err))
				return
			}
			if len(body) > maxControlBody {
				controlError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("rules document larger than %d bytes", maxControlBody))
				return
			}
			rules, err := parseRules(body)
			if err != nil {
				controlError(w, http.StatusBadRequest, err.Error())
				return
			}
			p.setRules(rules)
			p.writeRules(w, http.StatusOK)
		case http.MethodDelete:
			p.setRules(nil)
			w.WriteHeader(http.StatusNoContent)
		default:
			notAllowed(w, r, "GET, PUT, DELETE")
		}
	case "stats":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, statsDoc{Actions: p.snapshot()})
		case http.MethodDelete:
			p.resetStats()
			w.WriteHeader(http.StatusNoContent)
		default:
			notAllowed(w, r, "GET, DELETE")
		}
	default:
		controlError(w, http.StatusNotFound, fmt.Sprintf("no %s here: the fault proxy's control endpoint has %srules and %sstats", r.URL.Path, ControlPath, ControlPath))
	}
}

func (p *Proxy) writeRules(w http.ResponseWriter, status int) {
	doc, err := marshalRules(p.currentRules())
	if err != nil {
		controlError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(doc, '\n'))
}

func notAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	controlError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: allowed are %s", r.Method, r.URL.Path, allow))
}

// controlError answers {"error": message}.
func controlError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error": "encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
