// Command policyverifier asks containers/image, the library Podman,
// Buildah, Skopeo and CRI-O check pulls with, whether a trust policy admits
// an image, the way `podman pull` and `skopeo copy` ask it: the policy from
// a policy.json file, signatures found through a registries.d directory,
// and the policy checked on the image a pull would copy (for an index, the
// instance for --os/--arch), before anything else of it is read.
//
// It prints "accepted: IMAGE" and exits 0, or "refused: IMAGE: REASON" and
// exits 1; a policy containers/image cannot load is "invalid policy:
// REASON", exit 2. The tests build it from this file with a pinned
// containers/image (testbed/testenv.PolicyVerifier); it is no part of
// agent-images.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

func main() {
	policyPath := flag.String("policy", "", "policy.json to enforce")
	registriesD := flag.String("registries.d", "", "registries.d directory (use-sigstore-attachments)")
	insecure := flag.Bool("insecure", false, "plain HTTP or unverified TLS to the registry, like --tls-verify=false")
	osChoice := flag.String("os", "linux", "OS of the instance to check in an index")
	archChoice := flag.String("arch", "amd64", "architecture of the instance to check in an index")
	flag.Parse()
	if *policyPath == "" || *registriesD == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: policyverifier --policy FILE --registries.d DIR [--insecure] //HOST/REPO:TAG")
		os.Exit(2)
	}

	policy, err := signature.NewPolicyFromFile(*policyPath)
	if err != nil {
		fmt.Printf("invalid policy: %v\n", err)
		os.Exit(2)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		fmt.Printf("invalid policy: %v\n", err)
		os.Exit(2)
	}
	defer func() { _ = pc.Destroy() }()

	sys := &types.SystemContext{
		RegistriesDirPath:  *registriesD,
		OSChoice:           *osChoice,
		ArchitectureChoice: *archChoice,
		// Anonymous: no credentials of whoever runs the tests.
		DockerAuthConfig: &types.DockerAuthConfig{},
	}
	if *insecure {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	name := flag.Arg(0)
	if err := check(context.Background(), pc, sys, name); err != nil {
		fmt.Printf("refused: %s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("accepted: %s\n", name)
}

// check is copy.Image's admission of a pull: the policy is asked about the
// single image that would be copied.
func check(ctx context.Context, pc *signature.PolicyContext, sys *types.SystemContext, name string) error {
	ref, err := docker.ParseReference(name)
	if err != nil {
		return err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return err
	}
	defer src.Close()
	toplevel := image.UnparsedInstance(src, nil)
	blob, mt, err := toplevel.Manifest(ctx)
	if err != nil {
		return err
	}
	single := toplevel
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(blob, mt)
		if err != nil {
			return err
		}
		instance, err := list.ChooseInstance(sys)
		if err != nil {
			return err
		}
		single = image.UnparsedInstance(src, &instance)
	}
	allowed, err := pc.IsRunningImageAllowed(ctx, single)
	if err != nil {
		return err
	}
	if !allowed {
		return fmt.Errorf("the policy did not allow it")
	}
	return nil
}
