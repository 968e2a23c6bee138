package keystore

import "encoding/binary"

// Key prefixes of the Badger tables; the package documentation lists what
// each holds. They are part of the on-disk format.
const (
	pfxMeta         = "m/"
	pfxDedup        = "d/"
	pfxDedupQueue   = "dq/"
	pfxTenant       = "t/"
	pfxTenantName   = "tn/"
	pfxKey          = "k/"
	pfxKeyID        = "ki/"
	pfxUser         = "u/"
	pfxUserName     = "un/"
	pfxAccessKey    = "a/"
	pfxUserAccess   = "ua/"
	pfxBucket       = "b/"
	pfxTenantBucket = "tb/"
	pfxUpload       = "up/"
	pfxManifest     = "mf/"
)

var (
	keyApplied = []byte(pfxMeta + "applied")
	keySchema  = []byte(pfxMeta + "schema")
)

// schemaVersion is the layout version written at first open.
const schemaVersion = 1

func key(prefix string, parts ...[]byte) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func dedupKey(req [16]byte) []byte { return key(pfxDedup, req[:]) }

func dedupQueueKey(index uint64, pos uint32) []byte {
	k := append([]byte(pfxDedupQueue), make([]byte, 12)...)
	binary.BigEndian.PutUint64(k[len(pfxDedupQueue):], index)
	binary.BigEndian.PutUint32(k[len(pfxDedupQueue)+8:], pos)
	return k
}

func tenantKey(id ID) []byte             { return key(pfxTenant, id[:]) }
func tenantNameKey(name string) []byte   { return key(pfxTenantName, []byte(name)) }
func keyVersionKey(tenant, id ID) []byte { return key(pfxKey, tenant[:], id[:]) }
func keyIDKey(id ID) []byte              { return key(pfxKeyID, id[:]) }
func userKey(id ID) []byte               { return key(pfxUser, id[:]) }
func userNameKey(tenant ID, name string) []byte {
	return key(pfxUserName, tenant[:], []byte(name))
}
func accessKeyKey(id string) []byte { return key(pfxAccessKey, []byte(id)) }
func userAccessKey(user ID, id string) []byte {
	return key(pfxUserAccess, user[:], []byte(id))
}
func bucketKey(name string) []byte { return key(pfxBucket, []byte(name)) }
func tenantBucketKey(tenant ID, name string) []byte {
	return key(pfxTenantBucket, tenant[:], []byte(name))
}

// uploadBucketPrefix is the prefix of all uploads of bucket.
func uploadBucketPrefix(bucket string) []byte {
	return key(pfxUpload, []byte(bucket), []byte{0})
}

func uploadKey(bucket, objectKey, id string) []byte {
	return key(pfxUpload, []byte(bucket), []byte{0}, []byte(objectKey), []byte{0}, []byte(id))
}

func manifestBucketPrefix(bucket string) []byte {
	return key(pfxManifest, []byte(bucket), []byte{0})
}

func manifestKey(bucket, objectKey string) []byte {
	return key(pfxManifest, []byte(bucket), []byte{0}, []byte(objectKey))
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
