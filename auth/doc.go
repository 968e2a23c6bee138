// Package auth authenticates S3 requests: AWS Signature Version 4 in the
// Authorization header and in the query (presigned URLs), and every body
// mode of x-amz-content-sha256, as Amazon S3 computes and checks them.
//
// A Verifier checks a request from its headers and query alone, before any
// byte of the body is read, and hands back a Result whose Body yields the
// decoded payload (aws-chunked framing removed) while enforcing, as it
// streams, the chunk and trailer signatures, the payload hash, Content-MD5,
// the x-amz-checksum-* values (header or trailer) and the declared length.
// Every mismatch is returned by the Read that would have returned io.EOF,
// so a consumer that commits only on io.EOF never commits a forged body.
//
// Decisions, beyond what the S3 documentation fixes:
//
//   - Region: scopes must name Config.Region or, unless Config.StrictRegion,
//     us-east-1 (see Config.StrictRegion for why that is safe).
//   - Anonymous requests are an error (ErrAnonymous, code AccessDenied), not
//     a Result, so forgetting to check fails closed.
//   - Every x-amz-* header present must be signed, in both forms.
//   - The canonical URI is the S3 one (each byte outside the unreserved set
//     encoded once); the path exactly as sent is tried as well.
//   - aws-chunked: chunk header and trailer lines are read through a fixed
//     4 KiB buffer and refused past 256 bytes; a chunk may declare at most
//     MaxChunkSize (16 MiB); the trailer section has at most 8 lines. Nothing
//     is allocated from a length the client declares; chunks are streamed.
//   - The request time comes from X-Amz-Date only (not the Date header).
//   - An aws-chunked body without x-amz-decoded-content-length (what
//     aws-sdk-go-v2 sends for a stream of unknown length) is accepted with
//     Result.DecodedLength -1; S3 refuses it, the gateway may too.
//   - Presigned URLs: X-Amz-Expires from 1 to 604800 seconds; an X-Amz-Date
//     more than MaxSkew ahead is "not valid yet".
//
// Not handled here: SigV2, SigV4a (ECDSA), browser POST policy uploads and
// session tokens from STS (an X-Amz-Security-Token is signed over like any
// other parameter but means nothing to tresor).
//
// The errors are *Error values carrying S3 error codes; the gateway renders
// them.
package auth
