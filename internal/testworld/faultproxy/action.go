package faultproxy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// credentialScope is the SigV4 credential of r, split at "/":
// AKID/date/region/service/aws4_request, from the Authorization header or,
// for presigned URLs, the X-Amz-Credential query parameter; nil if r is not
// signed with SigV4.
func credentialScope(r *http.Request) []string {
	scope := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		if i := strings.Index(auth, "Credential="); i >= 0 {
			scope = auth[i+len("Credential="):]
			if j := strings.IndexAny(scope, ", "); j >= 0 {
				scope = scope[:j]
			}
		}
	} else {
		scope = r.URL.Query().Get("X-Amz-Credential")
	}
	parts := strings.Split(scope, "/")
	if len(parts) < 5 {
		return nil
	}
	return parts
}

// serviceOf is the service r is signed for, "" if unsigned.
func serviceOf(r *http.Request) string {
	if scope := credentialScope(r); scope != nil {
		return scope[3]
	}
	return ""
}

// regionOf is the region r is signed for, "" if unsigned.
func regionOf(r *http.Request) string {
	if scope := credentialScope(r); scope != nil {
		return scope[2]
	}
	return ""
}

// accessKeyOf is the access key ID that signed r: from the SigV4 credential,
// or from the AWSAccessKeyId query parameter of a SigV2 presigned URL; ""
// if r is not signed.
func accessKeyOf(r *http.Request) string {
	if scope := credentialScope(r); scope != nil {
		return scope[0]
	}
	return r.URL.Query().Get("AWSAccessKeyId")
}

// actionOf names r's action "service:Operation"; form is r's parsed
// url-encoded body, if it has one.
func actionOf(r *http.Request, form url.Values) string {
	service := serviceOf(r)
	if service == "" {
		service = "unsigned"
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		return service + ":" + target[strings.LastIndexByte(target, '.')+1:]
	}
	if a := form.Get("Action"); a != "" {
		return service + ":" + a
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return service + ":" + a
	}
	switch service {
	case "ebs":
		if op := ebsOperation(r); op != "" {
			return "ebs:" + op
		}
	case "s3":
		return "s3:" + s3Operation(r)
	}
	return service + ":" + r.Method + " " + r.URL.Path
}

var ebsPaths = []struct {
	method string
	path   *regexp.Regexp
	op     string
}{
	{http.MethodPost, regexp.MustCompile(`^/snapshots/?$`), "StartSnapshot"},
	{http.MethodPost, regexp.MustCompile(`^/snapshots/completion/[^/]+$`), "CompleteSnapshot"},
	{http.MethodPut, regexp.MustCompile(`^/snapshots/[^/]+/blocks/[^/]+$`), "PutSnapshotBlock"},
	{http.MethodGet, regexp.MustCompile(`^/snapshots/[^/]+/blocks/[^/]+$`), "GetSnapshotBlock"},
	{http.MethodGet, regexp.MustCompile(`^/snapshots/[^/]+/blocks$`), "ListSnapshotBlocks"},
	{http.MethodGet, regexp.MustCompile(`^/snapshots/[^/]+/changedblocks$`), "ListChangedBlocks"},
}

func ebsOperation(r *http.Request) string {
	for _, p := range ebsPaths {
		if r.Method == p.method && p.path.MatchString(r.URL.Path) {
			return p.op
		}
	}
	return ""
}

// s3Operation names a path-style S3 request (/bucket/key?subresource).
func s3Operation(r *http.Request) string {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	q := r.URL.Query()
	has := func(name string) bool { _, ok := q[name]; return ok }
	switch {
	case bucket == "":
		return "ListBuckets"
	case key == "":
		return s3BucketOperation(r.Method, q, has)
	}
	switch r.Method {
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId"):
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return "UploadPartCopy"
			}
			return "UploadPart"
		case has("tagging"):
			return "PutObjectTagging"
		case has("acl"):
			return "PutObjectAcl"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload"
		case has("uploadId"):
			return "CompleteMultipartUpload"
		}
		return "PostObject"
	case http.MethodDelete:
		if has("uploadId") {
			return "AbortMultipartUpload"
		}
		if has("tagging") {
			return "DeleteObjectTagging"
		}
		return "DeleteObject"
	case http.MethodHead:
		return "HeadObject"
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return "ListParts"
		case has("tagging"):
			return "GetObjectTagging"
		case has("attributes"):
			return "GetObjectAttributes"
		}
		return "GetObject"
	}
	return r.Method + "Object"
}

func s3BucketOperation(method string, q url.Values, has func(string) bool) string {
	// Subresources name the operation: ?versioning → PutBucketVersioning.
	for _, sub := range []struct{ query, name string }{
		{"versioning", "BucketVersioning"}, {"tagging", "BucketTagging"}, {"policy", "BucketPolicy"},
		{"lifecycle", "BucketLifecycleConfiguration"}, {"encryption", "BucketEncryption"}, {"acl", "BucketAcl"},
		{"location", "BucketLocation"}, {"cors", "BucketCors"}, {"publicAccessBlock", "PublicAccessBlock"},
		{"ownershipControls", "BucketOwnershipControls"},
	} {
		if has(sub.query) {
			switch method {
			case http.MethodGet:
				return "Get" + sub.name
			case http.MethodPut:
				return "Put" + sub.name
			case http.MethodDelete:
				return "Delete" + sub.name
			}
		}
	}
	switch method {
	case http.MethodPut:
		return "CreateBucket"
	case http.MethodDelete:
		return "DeleteBucket"
	case http.MethodHead:
		return "HeadBucket"
	case http.MethodPost:
		if has("delete") {
			return "DeleteObjects"
		}
		return "PostBucket"
	case http.MethodGet:
		switch {
		case has("uploads"):
			return "ListMultipartUploads"
		case has("versions"):
			return "ListObjectVersions"
		case q.Get("list-type") == "2":
			return "ListObjectsV2"
		}
		return "ListObjects"
	}
	return method + "Bucket"
}
