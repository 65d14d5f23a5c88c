// Package smoke owns the one check catalogue an agent image must pass before
// anyone can pull it: static checks read from the image's config and
// filesystem, and container checks run in a real runtime (podman or docker),
// natively or under qemu-user emulation. The flake's tests and the release
// tool's smoke stage both call Test, so an image is held to the same rules
// wherever it is checked.
//
// Static checks (Result.Static, always run, from the config and the layer tar
// headers, following symlinks inside the image):
//
//	config.nonroot              config User is not root (Expect.NonRoot)
//	config.user, fs.passwd,     config User names User/UID; passwd and group agree
//	fs.group
//	config.workdir              WorkingDir
//	config.entrypoint           Entrypoint as expected (mkAgentImage's start with HomeShim)
//	fs.entrypoint               its program resolves to an executable on the image PATH, and
//	                            behind HomeShim so does the program it runs
//	config.env KEY              exact values (Expect.Env)
//	config.env-once KEY         the key appears exactly once (Expect.UniqueEnv)
//	fs.file-env KEY             the value names a file (SSL_CERT_FILE)
//	config.label KEY            OCI labels present / equal
//	fs.command C, fs.absent C   on PATH or not
//	fs.dir D                    exists, owned by UID:GID, owner-writable
//	fs.root-owned D             exists, owned by 0:0
//	fs.tmp                      /tmp is a directory with mode 1777
//	config.env NIX_CONF_DIR, config.env NIX_PATH, fs.nix-conf (sandbox = false,
//	experimental-features), fs.nix-store (owned by the user), fs.nix-command
//	fs.nix-ld-loader            the loader path is a symlink to an executable
//	config.env NIX_LD, config.env NIX_LD_LIBRARY_PATH, config.nix-ld-libraries
//
// Container checks (one `<entrypoint> --version` run and one `sh -c` script
// whose probes print key=value lines, so an emulated arm64 image costs two
// container starts, not fifty; the script runs through HomeShim when the
// image has it, so it sees the HOME the agent gets; the tests add a user's
// flags such as --user or --userns to both):
//
//	run.version                 the image run with --version exits 0
//	run.whoami, run.id,         identity as the configured user
//	run.nonroot
//	run.home, run.pwd           $HOME and the working directory
//	run.command C, run.absent C command -v
//	run.env KEY                 values as the process sees them
//	run.file-env KEY            the file exists and is readable
//	run.dir D                   writable by the user, owner by stat
//	run.root-owned D, run.tmp
//	run.tmpfs-under-config      with a tmpfs on $HOME/.config/sub, $HOME/.config stays the user's and writable
//	run.writable D              D (a path, or $VAR) is writable and owned by the uid the process
//	                            runs as, whatever that is (Expect.Writable)
//	run.touch F                 the process creates F and leaves it, for the caller to check on the host
//	run.user-entry              the uid and gid are in /etc/passwd and /etc/group themselves (where
//	                            static programs and every C library look), nss_wrapper not in use
//	run.user-name               whoami, id -un and id -gn answer; where the image has getent (a
//	                            dynamically linked glibc program), getent passwd and group too
//	run.home-mount              a tmpfs mounted below the image's HOME is reachable at the same
//	                            place below $HOME
//	run.nix-env, run.nix-conf, run.nix-store
//	run.nix-install             nix-store --add, nix profile install and run the result (skips
//	                            against the stand-in nix)
//	run.nix-version             nix --version            (skips against the stand-in nix)
//	run.nix-path-info           nix path-info of the entrypoint's store path (skips likewise)
//	run.nix-ld-loader, run.nix-ld-env
//	run.nix-ld-foreign-elf      a program from the image with its interpreter rewritten to the
//	                            conventional loader path runs through nix-ld (skips against the
//	                            stand-in nix-ld)
//
// A check that fails is a Result with Status Fail; Test returns an error only
// when the image cannot be read or the runtime cannot load or start it.
package smoke
