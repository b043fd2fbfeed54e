// Command otelcol is a minimal OpenTelemetry Collector for snag's OTLP
// export test: the core OTLP receiver and an exporter that appends every
// batch of profiles it receives to a file as one line of OTLP JSON. It is its
// own module so the collector's dependencies stay out of snag's.
//
// Profiles need the collector's feature gate: run it with
// --feature-gates=service.profilesSupport.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/xexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func main() {
	cmd := otelcol.NewCommand(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol", Description: "snag's test collector", Version: "0.165.0"},
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
				DefaultScheme:     "file",
			},
		},
	})
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func factories() (otelcol.Factories, error) {
	receivers, err := otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory())
	if err != nil {
		return otelcol.Factories{}, err
	}
	exporters, err := otelcol.MakeFactoryMap[exporter.Factory](newProfileFileFactory())
	if err != nil {
		return otelcol.Factories{}, err
	}
	return otelcol.Factories{
		Receivers: receivers,
		Exporters: exporters,
		Telemetry: otelconftelemetry.NewFactory(),
	}, nil
}

// profileFileConfig configures the profilefile exporter.
type profileFileConfig struct {
	Path string `mapstructure:"path"`
}

func (c *profileFileConfig) Validate() error {
	if c.Path == "" {
		return errors.New("path: the file to append received profiles to is required")
	}
	return nil
}

func newProfileFileFactory() xexporter.Factory {
	return xexporter.NewFactory(
		component.MustNewType("profilefile"),
		func() component.Config { return &profileFileConfig{} },
		xexporter.WithProfiles(createProfileFile, component.StabilityLevelDevelopment),
	)
}

// profileFile appends each batch as a line of OTLP JSON, the encoding a
// reader can decode with pprofile.JSONUnmarshaler.
type profileFile struct {
	component.StartFunc
	xconsumer.Profiles
	mu sync.Mutex
	f  *os.File
}

func createProfileFile(_ context.Context, _ exporter.Settings, cfg component.Config) (xexporter.Profiles, error) {
	path := cfg.(*profileFileConfig).Path
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("profilefile: %w", err)
	}
	pf := &profileFile{f: f}
	pf.Profiles, err = xconsumer.NewProfiles(pf.write, consumer.WithCapabilities(consumer.Capabilities{MutatesData: false}))
	if err != nil {
		return nil, err
	}
	return pf, nil
}

func (pf *profileFile) write(_ context.Context, p pprofile.Profiles) error {
	b, err := (&pprofile.JSONMarshaler{}).MarshalProfiles(p)
	if err != nil {
		return fmt.Errorf("profilefile: %w", err)
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if _, err := pf.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("profilefile: %w", err)
	}
	return nil
}

func (pf *profileFile) Shutdown(context.Context) error { return pf.f.Close() }
