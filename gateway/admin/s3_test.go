package admin_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway"
	"github.com/tresor-gw/tresor/gateway/admin"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

// TestOperatorKey_RefusedByS3 checks that operators see no tenant data:
// an operator's access key does not authenticate on the S3 API at all,
// while a user the operator onboarded through the admin API works there.
func TestOperatorKey_RefusedByS3(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	op, err := store.BootstrapOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(gateway.Secrets(store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.DefaultConfig(), be, store, v)
	if err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gw)
	t.Cleanup(s3srv.Close)
	h, err := admin.New(store, admin.Config{})
	if err != nil {
		t.Fatal(err)
	}
	adminSrv := httptest.NewServer(h)
	t.Cleanup(adminSrv.Close)

	if _, _, err := gateway.Secrets(store).Secret(ctx, op.AccessKeyID); !errors.Is(err, auth.ErrUnknownAccessKey) {
		t.Fatalf("gateway.Secrets(operator key) = %v, want ErrUnknownAccessKey", err)
	}
	client := func(id, secret string) *s3.Client {
		return s3.New(s3.Options{
			BaseEndpoint: aws.String(s3srv.URL), Region: "us-east-1", UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		})
	}
	opc := &admin.Client{Endpoint: adminSrv.URL, AccessKeyID: op.AccessKeyID, SecretAccessKey: op.SecretAccessKey}
	if err := opc.Do(ctx, "POST", "tenants", admin.CreateTenantRequest{Name: "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	var nk admin.NewAccessKey
	if err := opc.Do(ctx, "POST", "tenants/acme/users", admin.CreateUserRequest{Name: "alice", Role: keystore.RoleAdmin, OperatorIsTenant: true}, &nk); err != nil {
		t.Fatal(err)
	}
	alice := client(nk.AccessKeyID, nk.SecretAccessKey)
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("acme-data")}); err != nil {
		t.Fatalf("onboarded admin on S3: %v", err)
	}
	opS3 := client(op.AccessKeyID, op.SecretAccessKey)
	for name, call := range map[string]func() error{
		"ListBuckets": func() error { _, err := opS3.ListBuckets(ctx, &s3.ListBucketsInput{}); return err },
		"ListObjectsV2": func() error {
			_, err := opS3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("acme-data")})
			return err
		},
		"CreateBucket": func() error {
			_, err := opS3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("operator-bucket")})
			return err
		},
	} {
		err := call()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAccessKeyId" {
			t.Errorf("%s with an operator key: %v, want InvalidAccessKeyId", name, err)
		}
	}
}
