package azure

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/appendblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/sluice-batch/sluice"
)

// Append implements sluice.Bucket on an append blob. Offset 0 creates the blob, only if
// there is none; every append carries the position it must land at, so the service
// refuses it (KindConflict, nothing written) when the blob's size is not offset, when
// the blob is gone, sealed (composed whole into another), not an append blob, or at its
// 50,000 appends. The service makes the bytes durable before it answers.
//
// An append whose answer was lost and which azcore then retried is refused by the
// position condition, as the first try moved the end: it returns KindConflict though
// the bytes were written. The caller then writes to a new key, as the contract asks,
// and the bytes left behind belong to no extent.
func (b *Bucket) Append(ctx context.Context, key string, offset int64, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := b.name(key)
	if err != nil {
		return err
	}
	ctx = b.withTry(ctx)
	ab := b.cont.NewAppendBlobClient(name)
	if offset == 0 {
		_, err := ab.Create(ctx, &appendblob.CreateOptions{AccessConditions: &blob.AccessConditions{
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)},
		}})
		if s := status(err); s == http.StatusConflict || s == http.StatusPreconditionFailed {
			return sluice.Errorf(sluice.KindConflict, "The object %s exists already; it cannot grow from 0.", key).WithErr(err)
		}
		if err != nil {
			return fmt.Errorf("append %s: %w", key, err)
		}
	}
	if len(p) == 0 && offset > 0 {
		// No bytes, no append request: check what the position condition would have.
		props, err := ab.GetProperties(ctx, nil)
		if err != nil {
			return appendError(key, offset, err)
		}
		if size := deref(props.ContentLength); size != offset {
			return sluice.Errorf(sluice.KindConflict, "The object %s holds %d bytes, not %d; it cannot grow from there.", key, size, offset)
		}
		return nil
	}
	for done := 0; done < len(p); {
		n := min(len(p)-done, b.maxAppendBytes)
		_, err := ab.AppendBlock(ctx, streaming.NopCloser(bytes.NewReader(p[done:done+n])), &appendblob.AppendBlockOptions{
			AppendPositionAccessConditions: &appendblob.AppendPositionAccessConditions{AppendPosition: to.Ptr(offset + int64(done))},
		})
		if err != nil {
			if done > 0 {
				// Part of p is in: the object's size is neither offset nor the new end.
				return fmt.Errorf("append %s: %d of %d bytes written: %w", key, done, len(p), err)
			}
			return appendError(key, offset, err)
		}
		done += n
	}
	return nil
}

// appendError translates the refusal of an append at offset.
func appendError(key string, offset int64, err error) error {
	switch {
	case status(err) == http.StatusNotFound:
		return sluice.Errorf(sluice.KindConflict, "The object %s is gone; it cannot grow.", key).WithErr(err)
	case bloberror.HasCode(err, bloberror.AppendPositionConditionNotMet):
		return sluice.Errorf(sluice.KindConflict, "The object %s does not hold %d bytes; it cannot grow from there.", key, offset).WithErr(err)
	case status(err) == http.StatusConflict || status(err) == http.StatusPreconditionFailed:
		// BlobIsSealed, InvalidBlobType, BlockCountExceedsLimit, MaxBlobSizeConditionNotMet
		return sluice.Errorf(sluice.KindConflict, "The object %s can no longer grow.", key).WithErr(err)
	}
	return fmt.Errorf("append %s: %w", key, err)
}
