package chromastore

import (
	"context"
	"errors"
	"fmt"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"
)

// OwnerKey is the collection metadata key that holds the identity of the
// collection's owner (for a RagService, its UID).
const OwnerKey = "ragops:owner"

// ErrForeignCollection means the collection belongs to another owner. It is
// permanent: retrying cannot help.
var ErrForeignCollection = errors.New("collection belongs to another owner")

// ownerError names the collection and both owners.
type ownerError struct {
	collection, have, want string
}

func (e *ownerError) Error() string {
	return fmt.Sprintf("chroma collection %q belongs to owner %q, not %q: refusing to use it (another RagService writes to it; delete the collection or point this one at another Chroma)",
		e.collection, e.have, e.want)
}

func (e *ownerError) Unwrap() error { return ErrForeignCollection }

// Claim gets or creates the collection and makes sure it belongs to the
// store's owner: a new collection is stamped with it, a collection without
// an owner (created by an older version) is adopted, and a collection
// stamped with another owner is refused with an error wrapping
// ErrForeignCollection. Without an owner in Options it only checks that
// Chroma answers.
func (s *Store) Claim(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := s.collection(ctx); err != nil {
		if errors.Is(err, ErrForeignCollection) {
			return err
		}
		return s.wrap("claim", err)
	}
	return nil
}

// claimOwner checks and, when needed, stamps the owner of a collection the
// store just got or created.
func (s *Store) claimOwner(ctx context.Context, coll chroma.Collection) error {
	if s.owner == "" {
		return nil
	}
	md := coll.Metadata()
	if md != nil {
		if have, ok := md.GetString(OwnerKey); ok && have != "" {
			if have != s.owner {
				return &ownerError{collection: s.name, have: have, want: s.owner}
			}
			return nil
		}
	}
	// New, or created by a version that stamped no owner: adopt it,
	// keeping its other metadata (ModifyMetadata replaces the whole map).
	stamped := chroma.NewMetadata()
	if md != nil {
		for _, k := range md.Keys() {
			if v, ok := md.GetRaw(k); ok {
				stamped.SetRaw(k, v)
			}
		}
	}
	stamped.SetString(OwnerKey, s.owner)
	if err := coll.ModifyMetadata(ctx, stamped); err != nil {
		return fmt.Errorf("stamp the owner on collection %q: %w", s.name, err)
	}
	return nil
}
