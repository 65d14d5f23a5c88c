package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/spf13/cobra"
)

func newKeygenCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a cosign key pair for signing releases with --key",
		Long: `keygen writes PREFIX.key (encrypted with $COSIGN_PASSWORD, which may be empty) and
PREFIX.pub, in the format cosign itself uses. Existing files are never overwritten.`,
		Example: `  COSIGN_PASSWORD=secret release keygen --prefix dist/cosign
  release --agent pi --push --registry R --key dist/cosign.key
  release verify --agent pi --registry R --key dist/cosign.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyPath, pubPath := prefix+".key", prefix+".pub"
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf("%s exists: remove it or choose another --prefix", p)
				} else if !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) {
				return []byte(os.Getenv("COSIGN_PASSWORD")), nil
			})
			if err != nil {
				return fmt.Errorf("generating a key pair: %w", err)
			}
			if err := os.WriteFile(keyPath, keys.PrivateBytes, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pubPath, keys.PublicBytes, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "private key: %s\npublic key:  %s\n", keyPath, pubPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "cosign", "path prefix of the two files")
	return cmd
}
