package sign

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// noAssertion is SPDX's "this document does not say".
const noAssertion = "NOASSERTION"

// spdxCreator is the tool named as creator and annotator.
var spdxCreator = common.Creator{CreatorType: "Tool", Creator: "agent-images-release"}

// spdx is the SPDX 2.3 document of one image. It says what the CycloneDX
// document says: the document DESCRIBES the image, which CONTAINS the agent
// and every store path; purls are external references, hashes checksums,
// and each CycloneDX property an annotation "name: value".
func (in sbomInput) spdx() *spdx.Document {
	created := in.created.Format(time.RFC3339)
	id := func(s string) common.DocElementID { return common.MakeDocElementID("", s) }
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      in.ref.String(),
		DocumentNamespace: "https://spdx.org/spdxdocs/agent-images/" + in.uuid,
		CreationInfo:      &spdx.CreationInfo{Creators: []common.Creator{spdxCreator}, Created: created},
		OtherLicenses:     otherLicenses(in.agent.License),
		Relationships:     []*spdx.Relationship{{RefA: id("DOCUMENT"), RefB: id("image"), Relationship: "DESCRIBES"}},
	}
	for i, c := range in.components() {
		pkg := &spdx.Package{
			PackageName:               c.name,
			PackageSPDXIdentifier:     spdxID(c.spdxID),
			PackageVersion:            c.version,
			PackageDownloadLocation:   noAssertion,
			PackageDescription:        c.description,
			PackageExternalReferences: []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: c.purl}},
			PrimaryPackagePurpose:     strings.ToUpper(string(c.kind)),
		}
		if c.sha256 != "" {
			pkg.PackageChecksums = []spdx.Checksum{{Algorithm: common.SHA256, Value: c.sha256}}
		}
		// The agent declares its licence, or that the flake gives none.
		if c.kind == cdx.ComponentTypeApplication {
			pkg.PackageLicenseDeclared = cmp.Or(c.license, noAssertion)
		}
		for _, p := range c.props {
			pkg.Annotations = append(pkg.Annotations, spdx.Annotation{
				Annotator:         common.Annotator{AnnotatorType: spdxCreator.CreatorType, Annotator: spdxCreator.Creator},
				AnnotationDate:    created,
				AnnotationType:    "OTHER",
				AnnotationComment: p.name + ": " + p.value,
			})
		}
		doc.Packages = append(doc.Packages, pkg)
		if i > 0 {
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: id("image"), RefB: id(string(pkg.PackageSPDXIdentifier)), Relationship: "CONTAINS"})
		}
	}
	return doc
}

// spdxID makes s an SPDX element ID: letters, digits, '.' and '-' only.
func spdxID(s string) common.ElementID {
	return common.ElementID(notInSPDXID.ReplaceAllString(s, "-"))
}

var notInSPDXID = regexp.MustCompile(`[^A-Za-z0-9.-]`)

// licenseRef finds the LicenseRef- identifiers of an SPDX expression.
var licenseRef = regexp.MustCompile(`\bLicenseRef-[A-Za-z0-9.-]+`)

// otherLicenses defines each LicenseRef- of expr, as SPDX requires of a
// document that uses one. Nix knows an unfree licence by name only, so the
// text says that and no more.
func otherLicenses(expr string) []*spdx.OtherLicense {
	var out []*spdx.OtherLicense
	refs := licenseRef.FindAllString(expr, -1)
	slices.Sort(refs)
	for _, id := range slices.Compact(refs) {
		text := "The flake names this licence " + id + "; its text is not recorded here."
		if id == "LicenseRef-unfree" {
			text = "The package is unfree (its nixpkgs meta.license is not free); the terms are its vendor's and are not recorded here."
		}
		out = append(out, &spdx.OtherLicense{LicenseIdentifier: id, ExtractedText: text})
	}
	return out
}
