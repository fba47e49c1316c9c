package contentstore

import (
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// httpStatus is the HTTP status of an S3 error response, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// apiCode is the S3 error code ("NoSuchKey"), or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isAPIError reports whether S3 answered (as opposed to a network failure
// or a cancelled context).
func isAPIError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae)
}

func isNoSuchBucket(err error) bool { return apiCode(err) == "NoSuchBucket" }

// isNotFound reports a missing key: HeadObject answers a bare 404, GetObject
// NoSuchKey.
func isNotFound(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false
	}
	return httpStatus(err) == http.StatusNotFound
}

// bucketError turns a bucket-level failure of op (a verb phrase: "read",
// "write to") into a message that names the bucket and what is wrong, or
// wraps err with context when it is none of those.
func (s *store) bucketError(op string, err error) error {
	b := s.loc.Bucket
	switch {
	case isNoSuchBucket(err):
		return fmt.Errorf("bucket %q does not exist: %w (%w)", b, ErrBucketNotFound, err)
	case httpStatus(err) == http.StatusForbidden:
		return fmt.Errorf("credentials cannot %s bucket %q: %w (%w)", op, b, ErrAccessDenied, err)
	}
	return fmt.Errorf("%s bucket %q: %w", op, b, err)
}
