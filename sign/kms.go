package sign

// The KMS providers cosign's key loader dispatches to by URI scheme
// (awskms://, azurekms://, gcpkms://, hashivault://). cosign's CLI links them
// the same way; without them a KMS --key would be read as a file name.
import (
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)
