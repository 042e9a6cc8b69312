/**
 * The tmux configuration every runtime gives an environment's tmux server (the local runtime
 * writes it beside the socket; the Kubernetes runtime mounts it from a ConfigMap). The terminal
 * hub relies on it: one screen size per session (the latest active client's), no status line (the
 * screen is the pane), a short escape delay (10 ms), and a private key that makes tmux repaint the client that
 * sends it. The user's own ~/.tmux.conf is read last and may change anything else.
 */

/** Written to tmux's stdin by the terminal hub: tmux answers with a full repaint of that client. */
export const TMUX_REPAINT_KEYS = '\x1b[9999~';

export const TMUX_CONF = `# DevPocket: one persistent session per environment, shared by every terminal client.
set -g status off
set -g window-size latest
set -s escape-time 10
set -g history-limit 20000
set -g default-terminal "screen-256color"
set -g focus-events on
set -g detach-on-destroy off
set -s set-clipboard on
set -s user-keys[0] "\\e[9999~"
bind -n User0 refresh-client
source-file -q ~/.tmux.conf
`;
