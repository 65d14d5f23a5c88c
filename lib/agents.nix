# The agents agent-images builds an image for: llm-agents.nix attribute and
# display name. Versions, descriptions, licences and main programs come from
# the llm-agents packages themselves, so they follow its pin.
{
  # Coding agents.
  codingAgents = {
    amp = "Amp";
    claude-code = "Claude Code";
    cli-proxy-api = "CLI Proxy API";
    code = "Code";
    codex = "Codex CLI";
    copilot-cli = "Copilot CLI";
    crush = "Crush";
    cursor-agent = "Cursor Agent";
    droid = "Droid";
    eca = "ECA";
    forge = "Forge";
    gemini-cli = "Gemini CLI";
    goose-cli = "Goose";
    iflow-cli = "iFlow CLI";
    jules = "Jules";
    kilocode-cli = "Kilocode CLI";
    letta-code = "Letta Code";
    mistral-vibe = "Mistral Vibe";
    nanocoder = "Nanocoder";
    oh-my-opencode = "Oh My OpenCode";
    omp = "OMP";
    opencode = "OpenCode";
    pi = "Pi";
    qoder-cli = "Qoder CLI";
    qwen-code = "Qwen Code";
  };
  # Assistants.
  assistants = {
    hermes-agent = "Hermes Agent";
    localgpt = "LocalGPT";
    openclaw = "OpenClaw";
    picoclaw = "PicoClaw";
    zeroclaw = "ZeroClaw";
  };
}
