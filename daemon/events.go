package main

import (
	"context"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/config"
	"github.com/ohfp/ohfp/internal/engine"
	"github.com/ohfp/ohfp/internal/provider"
)

// withEvents carries a provider's event queue and health settings
// (interruption_queue, rebalance_as_reclaim, health_checks,
// health_check_grace) into the engine's provider configuration.
func withEvents(pc *engine.ProviderConfig, p config.Provider) {
	pc.EventQueue = p.InterruptionQueue
	pc.RebalanceAsReclaim = p.RebalanceAsReclaim
	pc.HealthChecks = p.HealthChecks
	pc.StatusCheckGrace = p.HealthCheckGrace
}

// checkQueues is --check-config's test of each provider's
// interruption_queue: reachable (GetQueueUrl for a name, then
// GetQueueAttributes), one line each. "" when no provider has a queue.
func checkQueues(ctx context.Context, cfg *config.Config) (string, error) {
	var lines []string
	for _, p := range cfg.Providers {
		if p.InterruptionQueue == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		one := &config.Config{ClusterID: cfg.ClusterID, Providers: []config.Provider{p}}
		_, provs, err := d.buildProviders(ctx, one)
		if err != nil {
			cancel()
			return "", err
		}
		ap := provs[p.Name]
		info, err := ap.CheckQueue(ctx, p.InterruptionQueue)
		ap.Close()
		cancel()
		if err != nil {
			why := "check the queue's name or URL and region, and that ohfpd may call sqs:GetQueueUrl, sqs:GetQueueAttributes, sqs:ReceiveMessage and sqs:DeleteMessage on it"
			if provider.KindOf(err) == provider.Transient || provider.KindOf(err) == provider.Throttled {
				why = "SQS did not answer; ohfpd would still work by polling, and keep trying the queue"
			}
			return "", fmt.Errorf("provider %s: interruption_queue %s is not reachable: %w (%s)", p.Name, p.InterruptionQueue, err, why)
		}
		lines = append(lines, fmt.Sprintf("provider %s: interruption_queue %s reachable (%s waiting)", p.Name, info.URL, english.Plural(info.Messages, "message")))
	}
	return strings.Join(lines, "\n"), nil
}
