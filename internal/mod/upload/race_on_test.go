//go:build race

package upload_test

// raceDetector is true in a -race build, whose instrumentation allocates
// and so makes allocation counts meaningless.
const raceDetector = true
