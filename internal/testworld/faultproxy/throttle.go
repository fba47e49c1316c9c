package faultproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
)

var requestSeq atomic.Uint64

// throttleReply is the service's own throttling error for r, in its
// protocol's format, so that the SDK's retryer classifies it as AWS would.
func throttleReply(w http.ResponseWriter, r *http.Request, service string) {
	id := fmt.Sprintf("faultproxy-%d", requestSeq.Add(1))
	h := w.Header()
	h.Set("X-Amzn-Requestid", id)
	var status int
	var body []byte
	switch {
	case service == "s3":
		// S3 REST-XML: 503 SlowDown.
		status = http.StatusServiceUnavailable
		h.Set("Content-Type", "application/xml")
		h.Set("X-Amz-Request-Id", id)
		body = []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>` + id + `</RequestId><HostId>` + id + `</HostId></Error>`)
		if r.Method == http.MethodHead {
			body = nil
		}
	case service == "ec2":
		// EC2 query: 503 RequestLimitExceeded in <Response><Errors>.
		status = http.StatusServiceUnavailable
		h.Set("Content-Type", "text/xml;charset=UTF-8")
		body = []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>` + id + `</RequestID></Response>`)
	case r.Header.Get("X-Amz-Target") != "":
		// JSON 1.0/1.1 (SSM, KMS, ...): 400 ThrottlingException.
		status = http.StatusBadRequest
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/x-amz-json-1.1"
		}
		h.Set("Content-Type", ct)
		h.Set("X-Amzn-Errortype", "ThrottlingException")
		body, _ = json.Marshal(map[string]string{"__type": "ThrottlingException", "message": "Rate exceeded"})
	case service == "ebs":
		// EBS direct REST-JSON: 400 RequestThrottledException with a Reason.
		status = http.StatusBadRequest
		h.Set("Content-Type", "application/json")
		h.Set("X-Amzn-Errortype", "RequestThrottledException")
		body, _ = json.Marshal(map[string]string{"Message": "Rate exceeded", "Reason": "ACCOUNT_THROTTLED"})
	default:
		// AWS query (STS, IAM, ...): 400 Throttling in <ErrorResponse>.
		status = http.StatusBadRequest
		h.Set("Content-Type", "text/xml")
		body = []byte(`<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>` + id + `</RequestId></ErrorResponse>`)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
