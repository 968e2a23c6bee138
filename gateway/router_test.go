package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRouter_Resolve(t *testing.T) {
	rt := Router{Domains: []string{"s3.example.eu"}}
	copyHdr := http.Header{"X-Amz-Copy-Source": {"/src/k"}}
	tests := []struct {
		method, target string
		host           string
		header         http.Header
		want           Route
	}{
		{"GET", "/", "", nil, Route{Op: OpListBuckets}},
		{"PUT", "/b", "", nil, Route{Op: OpCreateBucket, Bucket: "b"}},
		{"HEAD", "/b", "", nil, Route{Op: OpHeadBucket, Bucket: "b"}},
		{"DELETE", "/b/", "", nil, Route{Op: OpDeleteBucket, Bucket: "b"}},
		{"GET", "/b?location", "", nil, Route{Op: OpGetBucketLocation, Bucket: "b"}},
		{"GET", "/b?versioning", "", nil, Route{Op: OpGetBucketVersioning, Bucket: "b"}},
		{"GET", "/b?prefix=a&delimiter=%2F", "", nil, Route{Op: OpListObjects, Bucket: "b"}},
		{"GET", "/b?list-type=2&x-id=ListObjectsV2", "", nil, Route{Op: OpListObjectsV2, Bucket: "b"}},
		{"GET", "/b?versions", "", nil, Route{Op: OpListObjectVersions, Bucket: "b"}},
		{"GET", "/b?uploads", "", nil, Route{Op: OpListMultipartUploads, Bucket: "b"}},
		{"POST", "/b?delete", "", nil, Route{Op: OpDeleteObjects, Bucket: "b"}},
		{"PUT", "/b/k", "", nil, Route{Op: OpPutObject, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?x-id=PutObject", "", nil, Route{Op: OpPutObject, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k", "", copyHdr, Route{Op: OpCopyObject, Bucket: "b", Key: "k"}},
		{"GET", "/b/a/b/c.txt", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "a/b/c.txt"}},
		{"GET", "/b/k?partNumber=2", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?versionId=null&response-content-type=text%2Fplain", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "k"}},
		{"HEAD", "/b/k", "", nil, Route{Op: OpHeadObject, Bucket: "b", Key: "k"}},
		{"DELETE", "/b/k", "", nil, Route{Op: OpDeleteObject, Bucket: "b", Key: "k"}},
		{"POST", "/b/k?uploads", "", nil, Route{Op: OpCreateMultipartUpload, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", nil, Route{Op: OpUploadPart, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", copyHdr, Route{Op: OpUploadPartCopy, Bucket: "b", Key: "k"}},
		{"POST", "/b/k?uploadId=u", "", nil, Route{Op: OpCompleteMultipartUpload, Bucket: "b", Key: "k"}},
		{"DELETE", "/b/k?uploadId=u", "", nil, Route{Op: OpAbortMultipartUpload, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?uploadId=u&max-parts=2", "", nil, Route{Op: OpListParts, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "k"}},

		// Keys keep escaped slashes, empty segments, dots and trailing slashes.
		{"GET", "/b/a%2Fb", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "a/b"}},
		{"GET", "/b/a//b/", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "a//b/"}},
		{"GET", "/b/../x", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "../x"}},
		{"GET", "/b/%252F..", "", nil, Route{Op: OpGetObject, Bucket: "b", Key: "%2F.."}},

		// Virtual-host style.
		{"GET", "/k/x", "photos.s3.example.eu", nil, Route{Op: OpGetObject, Bucket: "photos", Key: "k/x"}},
		{"GET", "/", "photos.s3.example.eu:9000", nil, Route{Op: OpListObjects, Bucket: "photos"}},
		{"GET", "/photos/k", "s3.example.eu", nil, Route{Op: OpGetObject, Bucket: "photos", Key: "k"}},

		// Sub-resources the gateway does not serve never become writes or reads.
		{"PUT", "/b/k?tagging", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?acl", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?retention", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?attributes", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"DELETE", "/b/k?tagging", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"POST", "/b/k?select&select-type=2", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"POST", "/b/k?restore", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"PUT", "/b?policy", "", nil, Route{Op: OpUnknown, Bucket: "b"}},
		{"PUT", "/b?versioning", "", nil, Route{Op: OpUnknown, Bucket: "b"}},
		{"GET", "/b?cors", "", nil, Route{Op: OpUnknown, Bucket: "b"}},
		{"DELETE", "/b?lifecycle", "", nil, Route{Op: OpUnknown, Bucket: "b"}},
		{"PUT", "/b/k?uploadId=u", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?partNumber=1", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"POST", "/b/k", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
		{"POST", "/b", "", nil, Route{Op: OpUnknown, Bucket: "b"}},
		{"PUT", "/", "", nil, Route{Op: OpUnknown}},
		{"GET", "/b?list-type=1", "", nil, Route{Op: OpUnknown, Bucket: "b"}},
		{"PATCH", "/b/k", "", nil, Route{Op: OpUnknown, Bucket: "b", Key: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host+tt.target, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.host != "" {
				r.Host = tt.host
			}
			for k, v := range tt.header {
				r.Header[k] = v
			}
			if got := rt.Resolve(r); got != tt.want {
				t.Errorf("Resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
}
