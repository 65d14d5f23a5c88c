package publish

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// BenchmarkPushImage pushes a 64 MiB image (two 32 MiB layers) to a fresh
// repository of Debian's docker-registry each time, through the shared
// retrying transport. B/op shows what a push holds in memory: it must stay
// far below the image size, as layers are streamed, not buffered.
//
//	go test ./publish -run '^$' -bench PushImage -benchmem -benchtime 5x
func BenchmarkPushImage(b *testing.B) {
	host := testenv.StartRegistry(b)
	img, err := random.Image(32<<20, 2)
	if err != nil {
		b.Fatal(err)
	}
	size, err := pullsize.Of(img)
	if err != nil {
		b.Fatal(err)
	}
	// Compress once before timing: ggcr caches the compressed digests.
	if _, err := img.Digest(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		repo, _ := name.NewRepository(fmt.Sprintf("%s/bench/r%d", host, i))
		// A new publisher each time, so nothing is mounted from the last push.
		if _, err := NewRegistry(prefix(b, host), transport.NewRegistry()).pushImage(context.Background(), repo, img); err != nil {
			b.Fatal(err)
		}
	}
}
