package faultproxy

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

var requestSeq atomic.Uint64

// awsError is one error answer: what the SDK reads as the error code, the
// HTTP status, the message, and for EBS direct the Reason field its
// throttling and validation errors carry.
type awsError struct {
	code, message string
	status        int
	reason        string
}

// throttleError is the service's own throttling error, so that the SDK's
// retryer classifies it as AWS would.
func throttleError(r *http.Request, service string) awsError {
	switch {
	case service == "s3":
		return awsError{code: "SlowDown", status: http.StatusServiceUnavailable, message: "Please reduce your request rate."}
	case service == "ec2":
		return awsError{code: "RequestLimitExceeded", status: http.StatusServiceUnavailable, message: "Request limit exceeded."}
	case r.Header.Get("X-Amz-Target") != "":
		return awsError{code: "ThrottlingException", status: http.StatusBadRequest, message: "Rate exceeded"}
	case service == "ebs":
		return awsError{code: "RequestThrottledException", status: http.StatusBadRequest, message: "Rate exceeded", reason: "ACCOUNT_THROTTLED"}
	}
	return awsError{code: "Throttling", status: http.StatusBadRequest, message: "Rate exceeded"}
}

// chosenError is a rule's ErrorReply as an answer, its defaults filled in.
func chosenError(e ErrorReply, action string) awsError {
	out := awsError{code: e.Code, status: e.Status, message: e.Message}
	if out.status == 0 {
		out.status = defaultStatus(e.Code)
	}
	if out.message == "" {
		out.message = fmt.Sprintf("%s injected into %s by the test world's fault proxy", e.Code, action)
	}
	return out
}

// statusByCode is the HTTP status AWS sends with error codes whose status is
// not 400. EC2 documents its codes as client errors (4xx) or server errors
// (5xx, e.g. the Insufficient*Capacity family and InternalError); the
// specific statuses are those the services answer with.
var statusByCode = map[string]int{
	"AuthFailure":             http.StatusUnauthorized,
	"UnauthorizedOperation":   http.StatusForbidden,
	"AccessDenied":            http.StatusForbidden,
	"InvalidClientTokenId":    http.StatusForbidden,
	"SignatureDoesNotMatch":   http.StatusForbidden,
	"NoSuchBucket":            http.StatusNotFound,
	"NoSuchKey":               http.StatusNotFound,
	"NoSuchEntity":            http.StatusNotFound,
	"InternalError":           http.StatusInternalServerError,
	"InternalFailure":         http.StatusInternalServerError,
	"ServerInternal":          http.StatusInternalServerError,
	"InternalServerError":     http.StatusInternalServerError,
	"InternalServerException": http.StatusInternalServerError,
	"KMSInternalException":    http.StatusInternalServerError,
	"RequestLimitExceeded":    http.StatusServiceUnavailable,
	"ServiceUnavailable":      http.StatusServiceUnavailable,
	"Unavailable":             http.StatusServiceUnavailable,
	"SlowDown":                http.StatusServiceUnavailable,
}

func defaultStatus(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	// EC2's capacity errors (InsufficientInstanceCapacity,
	// InsufficientVolumeCapacity, InsufficientAddressCapacity, ...) are
	// server errors.
	if strings.HasPrefix(code, "Insufficient") && strings.HasSuffix(code, "Capacity") {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// writeError answers r with e in the protocol of service: EC2 query XML,
// S3 REST-XML, JSON 1.0/1.1 (any call with X-Amz-Target: SSM, KMS), EBS
// direct REST-JSON, and AWS query XML for the rest (STS, IAM).
func writeError(w http.ResponseWriter, r *http.Request, service string, e awsError) {
	id := fmt.Sprintf("faultproxy-%d", requestSeq.Add(1))
	h := w.Header()
	h.Set("X-Amzn-Requestid", id)
	code, message := xmlText(e.code), xmlText(e.message)
	var body []byte
	switch {
	case service == "s3":
		h.Set("Content-Type", "application/xml")
		h.Set("X-Amz-Request-Id", id)
		body = []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Error><Code>` + code + `</Code><Message>` + message + `</Message><RequestId>` + id + `</RequestId><HostId>` + id + `</HostId></Error>`)
		if r.Method == http.MethodHead {
			// As on AWS: a HEAD answer has no body, the SDK sees the status only.
			body = nil
		}
	case service == "ec2":
		h.Set("Content-Type", "text/xml;charset=UTF-8")
		body = []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Response><Errors><Error><Code>` + code + `</Code><Message>` + message + `</Message></Error></Errors><RequestID>` + id + `</RequestID></Response>`)
	case r.Header.Get("X-Amz-Target") != "":
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/x-amz-json-1.1"
		}
		h.Set("Content-Type", ct)
		h.Set("X-Amzn-Errortype", e.code)
		body, _ = json.Marshal(map[string]string{"__type": e.code, "message": e.message})
	case service == "ebs":
		h.Set("Content-Type", "application/json")
		h.Set("X-Amzn-Errortype", e.code)
		fields := map[string]string{"Message": e.message}
		if e.reason != "" {
			fields["Reason"] = e.reason
		}
		body, _ = json.Marshal(fields)
	default:
		// AWS query: the fault's side is Sender for 4xx, Receiver for 5xx.
		side := "Sender"
		if e.status >= 500 {
			side = "Receiver"
		}
		h.Set("Content-Type", "text/xml")
		body = []byte(`<ErrorResponse><Error><Type>` + side + `</Type><Code>` + code + `</Code><Message>` + message + `</Message></Error><RequestId>` + id + `</RequestId></ErrorResponse>`)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
