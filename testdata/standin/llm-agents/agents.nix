# The 30 packages of numtide/llm-agents.nix that agent-images wraps, as
# recorded in /work/shared/data/llm-agents.json on 2026-04-30: attr, version,
# mainProgram, platforms and whether the licence is unfree are facts from there.
# The descriptions are our own short summaries and the free licences our best
# reading of each project; the real flake's meta is what the product uses.
# `builder` is the package's shape in llm-agents as of late 2026: "mkPackage"
# for the prebuilt binaries (its own nixpkgs-free builder, corepkgs/mk/
# package.nix), "nixpkgs" for those built from source with nixpkgs' builders.
# forge is packaged as `forgecode` there (mainProgram forge).
[
  {
    attr = "amp";
    version = "0.0.1777525425-gadc8b1";
    mainProgram = "amp";
    description = "Sourcegraph's agentic coding tool for the terminal";
    license = "unfree";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "claude-code";
    version = "2.1.123";
    mainProgram = "claude";
    description = "Anthropic's agentic coding assistant for the terminal";
    license = "unfree";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "cli-proxy-api";
    version = "6.9.45";
    mainProgram = "cli-proxy-api";
    description = "Proxy that exposes coding-agent CLIs through an OpenAI-compatible API";
    license = "mit";
    # go
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "code";
    version = "0.6.96";
    mainProgram = "code";
    description = "Terminal coding agent forked from Codex, with extra tools";
    license = "asl20";
    # rust
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "codex";
    version = "0.125.0";
    mainProgram = "codex";
    description = "OpenAI's lightweight coding agent that runs in the terminal";
    license = "asl20";
    # rust
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "copilot-cli";
    version = "1.0.39";
    mainProgram = "copilot";
    description = "GitHub Copilot as an agent in the terminal";
    license = "unfree";
    # npm tarball + nodejs
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "crush";
    version = "0.64.0";
    mainProgram = "crush";
    description = "Charm's glamorous AI coding agent for the terminal";
    license = "mit";
    # go
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "cursor-agent";
    version = "2026.04.29-c83a488";
    mainProgram = "cursor-agent";
    description = "Cursor's coding agent for the command line";
    license = "unfree";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "droid";
    version = "0.113.0";
    mainProgram = "droid";
    description = "Factory's software engineering agent for the terminal";
    license = "unfree";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "eca";
    version = "0.131.0";
    mainProgram = "eca";
    description = "Editor Code Assistant: an editor-agnostic AI pair-programming server";
    license = "asl20";
    # prebuilt native binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    # Renamed upstream: the package is forgecode, its program still forge.
    attr = "forgecode";
    version = "2.12.10";
    mainProgram = "forge";
    description = "AI pair programmer for the shell, working with many model providers";
    license = "asl20";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "gemini-cli";
    version = "0.40.0";
    mainProgram = "gemini";
    description = "Google's open-source AI agent that brings Gemini to the terminal";
    license = "asl20";
    # npm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "goose-cli";
    version = "1.24.0";
    mainProgram = "goose";
    description = "Block's extensible open-source AI agent for engineering tasks";
    license = "asl20";
    # rust
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "iflow-cli";
    version = "0.5.19";
    mainProgram = "iflow";
    description = "iFlow's AI agent for the terminal";
    license = "mit";
    # npm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "jules";
    version = "0.1.42";
    mainProgram = "jules";
    description = "Google's asynchronous coding agent, driven from the command line";
    license = "unfree";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "kilocode-cli";
    version = "7.2.31";
    mainProgram = "kilocode";
    description = "Kilo Code's open-source coding agent for the terminal";
    license = "asl20";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "letta-code";
    version = "0.24.12";
    mainProgram = "letta";
    description = "Memory-first coding agent built on Letta";
    license = "asl20";
    # npm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "mistral-vibe";
    version = "2.9.2";
    mainProgram = "vibe";
    description = "Mistral AI's command-line coding assistant";
    license = "asl20";
    # python
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "nanocoder";
    version = "1.25.2";
    mainProgram = "nanocoder";
    description = "Local-first coding agent for the terminal";
    license = "mit";
    # npm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "oh-my-opencode";
    version = "3.17.6";
    mainProgram = "oh-my-opencode";
    description = "Agent harness and plugin collection for OpenCode";
    license = "unfree";
    # bun
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "omp";
    version = "14.5.10";
    mainProgram = "omp";
    description = "Oh My Pi: a coding agent harness built on Pi";
    license = "mit";
    # bun + rust
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "opencode";
    version = "1.14.30";
    mainProgram = "opencode";
    description = "Open-source AI coding agent built for the terminal";
    license = "mit";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "pi";
    version = "0.70.6";
    mainProgram = "pi";
    description = "Minimal, extensible terminal coding agent";
    license = "mit";
    # npm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "qoder-cli";
    version = "0.2.5";
    mainProgram = "qodercli";
    description = "Qoder's agentic coding tool for the terminal";
    license = "unfree";
    # prebuilt binary
    builder = "mkPackage";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "qwen-code";
    version = "0.15.5";
    mainProgram = "qwen";
    description = "Command-line AI workflow tool tuned for Qwen coder models";
    license = "asl20";
    # npm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "hermes-agent";
    version = "2026.4.23";
    mainProgram = "hermes";
    description = "Nous Research's self-improving personal AI agent";
    license = "mit";
    # python + npm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "localgpt";
    version = "0.3.6";
    mainProgram = "localgpt";
    description = "Local-device AI assistant with persistent memory";
    license = "asl20";
    # rust
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "openclaw";
    version = "2026.4.26";
    mainProgram = "openclaw";
    description = "Personal AI assistant that runs on your own devices";
    license = "mit";
    # pnpm
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "picoclaw";
    version = "0.2.7";
    mainProgram = "picoclaw";
    description = "Ultra-lightweight personal AI assistant written in Go";
    license = "mit";
    # go
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "zeroclaw";
    version = "0.7.3";
    mainProgram = "zeroclaw";
    description = "Fast, small, fully autonomous AI assistant infrastructure";
    license = "asl20";
    # rust
    builder = "nixpkgs";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
]
