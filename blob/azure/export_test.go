package azure

// SetMaxBlocks lowers the number of blocks b's composed objects may have, so that tests
// reach the limit with small objects.
func SetMaxBlocks(b *Bucket, n int) { b.maxBlocks = n }
