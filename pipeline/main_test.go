package pipeline

import (
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
)

func TestMain(m *testing.M) { orttest.Main(m) }
