package sources

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// The keys of an S3 source's Secret.
const (
	S3AccessKeyID     = "accessKeyID"
	S3SecretAccessKey = "secretAccessKey"
)

// S3 is a prefix of a bucket on an S3-compatible store. A file's path is its
// key without the prefix. The revision is a digest of the listed keys and
// their ETags.
type S3 struct {
	Client *minio.Client
	Bucket string
	Prefix string
}

func newS3(spec ragv1alpha1.S3Source, secretDir string) (*S3, error) {
	u, err := url.Parse(spec.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3 endpoint %q must be an http:// or https:// URL", spec.Endpoint)
	}
	vals, err := readSecret(secretDir)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewStaticV4("", "", "") // anonymous
	if secretDir != "" {
		id, key := vals[S3AccessKeyID], vals[S3SecretAccessKey]
		if id == "" || key == "" {
			return nil, fmt.Errorf("the Secret of an s3 source needs the keys %s and %s", S3AccessKeyID, S3SecretAccessKey)
		}
		creds = credentials.NewStaticV4(id, key, "")
	}
	region := spec.Region
	if region == "" {
		region = "us-east-1"
	}
	client, err := minio.New(u.Host, &minio.Options{Creds: creds, Secure: u.Scheme == "https", Region: region})
	if err != nil {
		return nil, err
	}
	return &S3{Client: client, Bucket: spec.Bucket, Prefix: spec.Prefix}, nil
}

// List pages through the keys under the prefix (the client asks for 1,000
// at a time), visiting each object as it is listed.
func (s *S3) List(ctx context.Context, visit func(Entry) error) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if visit fails
	rev := newRevision()
	for obj := range s.Client.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: s.Prefix, Recursive: true}) {
		if obj.Err != nil {
			return "", fmt.Errorf("list s3://%s/%s: %w", s.Bucket, s.Prefix, obj.Err)
		}
		if strings.HasSuffix(obj.Key, "/") {
			continue // a "directory" marker
		}
		name := cleanPath(strings.TrimPrefix(obj.Key, s.Prefix))
		if name == "" {
			continue
		}
		rev.add(obj.Key, obj.ETag)
		key := obj.Key
		err := visit(Entry{Path: name, Size: obj.Size, Open: func(ctx context.Context) (io.ReadCloser, error) {
			o, err := s.Client.GetObject(ctx, s.Bucket, key, minio.GetObjectOptions{})
			if err != nil {
				return nil, fmt.Errorf("get s3://%s/%s: %w", s.Bucket, key, err)
			}
			return o, nil
		}})
		if err != nil {
			return "", err
		}
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return rev.String(), nil
}
