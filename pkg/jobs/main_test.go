package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

var (
	ctx     = context.Background()
	syncJob = pool.Actor{Kind: "job", Name: "sync"}
	poolCfg = config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute}
)
