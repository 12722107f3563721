package client

// SetPartSize sets the size of the parts UploadFileInParts sends, for tests of
// uploads of several parts without 64 MB of data; it returns a function that puts
// it back.
func SetPartSize(n int64) func() {
	old := partSize
	partSize = n
	return func() { partSize = old }
}
