package gateway

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
)

// docShape bounds the work of decoding one kind of request document: its
// root element, how deep elements nest (the depth of S3's schema for it)
// and how many elements it may hold (its most entries, each with every
// child the schema gives it). A document outside the shape does not
// validate against the schema, so it is MalformedXML, as S3 answers.
type docShape struct {
	root        string
	maxDepth    int
	maxElements int
}

var (
	// <Delete><Quiet/><Object><Key/><VersionId/><ETag/><LastModifiedTime/><Size/></Object>...</Delete>
	deleteShape = docShape{root: "Delete", maxDepth: 3, maxElements: 2 + maxDeleteKeys*6}
	// <CompleteMultipartUpload><Part><PartNumber/><ETag/> and five
	// checksums </Part>...</CompleteMultipartUpload>
	completeShape = docShape{root: "CompleteMultipartUpload", maxDepth: 3, maxElements: 1 + maxPartNumber*8}
	// <CreateBucketConfiguration><LocationConstraint/><Location>..</Location>
	// <Bucket>..</Bucket><Tags><Tag><Key/><Value/></Tag>...</Tags></CreateBucketConfiguration>
	createBucketShape = docShape{root: "CreateBucketConfiguration", maxDepth: 4, maxElements: 256}
)

func malformedXML() error { return s3Error("MalformedXML") }

// decodeXML decodes the document b, read whole by readBody, into v. It first
// walks the tokens to check the shape: exactly one root element, of the
// expected name, nothing but white space, comments and processing
// instructions around it, no DTD, and within the depth and element bounds.
// Only then is it decoded, so no decoder works on a document nested deeper
// or holding more than the schema allows, and trailing content (a second
// root) is refused rather than ignored.
func decodeXML(b []byte, v any, shape docShape) error {
	if err := checkShape(b, shape); err != nil {
		return err
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return malformedXML()
	}
	return nil
}

func checkShape(b []byte, shape docShape) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, elements, roots := 0, 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return malformedXML()
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 || t.Name.Local != shape.root {
					return malformedXML()
				}
			}
			depth++
			elements++
			if depth > shape.maxDepth || elements > shape.maxElements {
				return malformedXML()
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return malformedXML()
			}
		case xml.Directive:
			return malformedXML()
		}
	}
	if roots != 1 {
		return malformedXML()
	}
	return nil
}

// parseDelete decodes a DeleteObjects document: 1 to 1,000 keys, as S3
// takes (more is MalformedXML there too).
func parseDelete(b []byte) (deleteRequest, error) {
	var req deleteRequest
	if err := decodeXML(b, &req, deleteShape); err != nil {
		return deleteRequest{}, err
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		return deleteRequest{}, malformedXML()
	}
	return req, nil
}

// parseComplete decodes a CompleteMultipartUpload document: 1 to 10,000
// parts. Their order and existence are the handler's to check.
func parseComplete(b []byte) (completeMultipartUpload, error) {
	var req completeMultipartUpload
	if err := decodeXML(b, &req, completeShape); err != nil {
		return completeMultipartUpload{}, err
	}
	if len(req.Parts) == 0 || len(req.Parts) > maxPartNumber {
		return completeMultipartUpload{}, s3Error("MalformedXML", "The XML you provided must list between 1 and 10000 parts.")
	}
	return req, nil
}

// parseCreateBucket decodes CreateBucket's optional document: an empty
// body is no configuration.
func parseCreateBucket(b []byte) (createBucketConfiguration, error) {
	var cfg createBucketConfiguration
	if len(b) == 0 {
		return cfg, nil
	}
	if err := decodeXML(b, &cfg, createBucketShape); err != nil {
		return createBucketConfiguration{}, err
	}
	return cfg, nil
}
