/**
 * The console's shell: sign-in with an operator token (checked against the API before it is kept in
 * sessionStorage), the live connection, the views as tabs, the confirmation dialogs of drain, undrain
 * and end-session, and the dark / light theme (the system's by default, a toggle overrides it).
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, storedToken, storeToken } from './api.js';
import { FeedConnection, type FeedStatus } from './feed.js';
import { FleetView } from './fleet.js';
import { ConsoleModel } from './model.js';
import { AutoscalerView, CostsView, EventsView, QueueView, SessionsView } from './panels.js';

type Theme = 'dark' | 'light';
const themeKey = 'vca.consoleTheme';

function initialTheme(): Theme {
  try {
    const saved = localStorage.getItem(themeKey);
    if (saved === 'dark' || saved === 'light') return saved;
  } catch {}
  return matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

function SignIn({ onSignedIn, notice }: { onSignedIn: (token: string) => void; notice: string | undefined }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(notice);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main class="signin">
      <form
        aria-labelledby="signin-heading"
        onSubmit={async (event) => {
          event.preventDefault();
          if (!token.trim()) {
            setError('Enter an operator token.');
            return;
          }
          setBusy(true);
          const result = await api(token.trim(), 'GET', '/v1/cluster');
          setBusy(false);
          if (result.ok) onSignedIn(token.trim());
          else
            setError(
              result.status === 401 || result.status === 403
                ? 'Sign-in refused: this is not an operator token.'
                : `Sign-in failed: ${result.error}`,
            );
        }}
      >
        <h1 id="signin-heading">VCA operator console</h1>
        <label for="token">Operator token</label>
        <input
          id="token"
          ref={input}
          type="password"
          autocomplete="off"
          value={token}
          aria-invalid={error ? 'true' : undefined}
          aria-describedby={error ? 'signin-error' : undefined}
          onInput={(event) => setToken((event.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error ? (
          <p id="signin-error" class="error" role="alert">
            {error}
          </p>
        ) : null}
        <p class="muted small">The token is kept in this tab's session storage only.</p>
      </form>
    </main>
  );
}

interface DialogRequest {
  title: string;
  body: string;
  confirmLabel: string;
  /** Drain: ask for a deadline. */
  deadline?: boolean;
  action: (deadlineSeconds: number | undefined) => Promise<string | undefined>;
}

function ConfirmDialog({ request, onClose }: { request: DialogRequest; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [deadline, setDeadline] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  return (
    <dialog
      ref={dialog}
      class="dialog"
      aria-labelledby="dialog-title"
      onClose={onClose}
      data-testid="confirm-dialog"
    >
      <form
        method="dialog"
        onSubmit={async (event) => {
          event.preventDefault();
          let seconds: number | undefined;
          if (request.deadline && deadline.trim() !== '') {
            seconds = Number(deadline);
            if (!Number.isInteger(seconds) || seconds < 0 || seconds > 86_400) {
              setError('The deadline is a whole number of seconds from 0 to 86400.');
              return;
            }
          }
          setBusy(true);
          const failure = await request.action(seconds);
          setBusy(false);
          if (failure) setError(failure);
          else dialog.current?.close();
        }}
      >
        <h2 id="dialog-title">{request.title}</h2>
        <p>{request.body}</p>
        {request.deadline ? (
          <label>
            Deadline in seconds (empty: the gateway's default)
            <input
              name="deadline"
              type="number"
              min={0}
              max={86400}
              step={1}
              value={deadline}
              onInput={(event) => setDeadline((event.target as HTMLInputElement).value)}
            />
          </label>
        ) : null}
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <div class="dialog-buttons">
          <button type="button" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {request.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

const tabs = [
  { id: 'fleet', label: 'Fleet' },
  { id: 'queue', label: 'Queue' },
  { id: 'sessions', label: 'Sessions' },
  { id: 'autoscaler', label: 'Autoscaler' },
  { id: 'events', label: 'Events' },
  { id: 'costs', label: 'Costs' },
] as const;
type TabId = (typeof tabs)[number]['id'];

function initialTab(): TabId {
  const wanted = location.hash.slice(1);
  return tabs.some((tab) => tab.id === wanted) ? (wanted as TabId) : 'fleet';
}

function Dashboard({
  token,
  onSignOut,
  theme,
  toggleTheme,
}: {
  token: string;
  onSignOut: (notice?: string) => void;
  theme: Theme;
  toggleTheme: () => void;
}) {
  const model = useMemo(() => new ConsoleModel(), []);
  const [status, setStatus] = useState<{ status: FeedStatus; detail: string }>({
    status: 'connecting',
    detail: 'connecting',
  });
  const [tab, setTab] = useState<TabId>(initialTab);
  const [dialog, setDialog] = useState<DialogRequest | undefined>(undefined);

  useEffect(() => {
    const feed = new FeedConnection({
      token,
      model,
      onStatus: (next, detail) => {
        if (next === 'refused') onSignOut(`Sign-in refused: ${detail}`);
        else setStatus({ status: next, detail });
      },
    });
    feed.start();
    return () => feed.stop();
  }, [token, model, onSignOut]);

  const selectTab = (id: TabId) => {
    setTab(id);
    history.replaceState(null, '', `#${id}`);
  };

  const drain = (id: string) =>
    setDialog({
      title: `Drain ${id}?`,
      body: 'The node takes no new sessions; at the deadline its sessions migrate, then it is drained and removed.',
      confirmLabel: 'Drain',
      deadline: true,
      action: async (deadlineSeconds) => {
        const result = await api(
          token,
          'POST',
          `/v1/nodes/${encodeURIComponent(id)}/drain`,
          deadlineSeconds === undefined ? {} : { deadlineSeconds },
        );
        return result.ok ? undefined : result.error;
      },
    });
  const undrain = (id: string) =>
    setDialog({
      title: `Undrain ${id}?`,
      body: 'The node returns to service and takes new sessions again.',
      confirmLabel: 'Undrain',
      action: async () => {
        const result = await api(token, 'POST', `/v1/nodes/${encodeURIComponent(id)}/undrain`);
        return result.ok ? undefined : result.error;
      },
    });
  const confirm = (title: string, body: string, action: () => Promise<string | undefined>) =>
    setDialog({ title, body, confirmLabel: 'End session', action: () => action() });

  return (
    <div class="shell">
      <header class="topbar">
        <h1>VCA operator console</h1>
        <span
          class={`status status-${status.status}`}
          role="status"
          aria-live="polite"
          data-testid="connection"
          data-status={status.status}
        >
          {status.status === 'live' ? 'live' : status.detail}
        </span>
        <span class="spacer-flex" />
        <button
          type="button"
          onClick={toggleTheme}
          aria-label={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {theme === 'dark' ? 'Light theme' : 'Dark theme'}
        </button>
        <button type="button" onClick={() => onSignOut()}>
          Sign out
        </button>
      </header>
      <div class="tabs" role="tablist" aria-label="Views">
        {tabs.map((entry) => (
          <button
            key={entry.id}
            type="button"
            role="tab"
            id={`tab-${entry.id}`}
            aria-selected={tab === entry.id}
            aria-controls="panel"
            class={tab === entry.id ? 'tab selected' : 'tab'}
            onClick={() => selectTab(entry.id)}
          >
            {entry.label}
          </button>
        ))}
      </div>
      <div id="panel" role="tabpanel" aria-labelledby={`tab-${tab}`} class="panel">
        {tab === 'fleet' ? <FleetView model={model} onDrain={drain} onUndrain={undrain} /> : null}
        {tab === 'queue' ? <QueueView model={model} /> : null}
        {tab === 'sessions' ? <SessionsView token={token} confirm={confirm} /> : null}
        {tab === 'autoscaler' ? <AutoscalerView model={model} /> : null}
        {tab === 'events' ? <EventsView model={model} /> : null}
        {tab === 'costs' ? <CostsView token={token} /> : null}
      </div>
      {dialog ? <ConfirmDialog request={dialog} onClose={() => setDialog(undefined)} /> : null}
    </div>
  );
}

export function App() {
  const [token, setToken] = useState<string | null>(storedToken);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [theme, setTheme] = useState<Theme>(initialTheme);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  const signOut = useMemo(
    () => (message?: string) => {
      storeToken(null);
      setNotice(message);
      setToken(null);
    },
    [],
  );
  const toggleTheme = () => {
    const next: Theme = theme === 'dark' ? 'light' : 'dark';
    try {
      localStorage.setItem(themeKey, next);
    } catch {}
    setTheme(next);
  };
  if (token === null)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(value) => {
          storeToken(value);
          setNotice(undefined);
          setToken(value);
        }}
      />
    );
  return <Dashboard token={token} onSignOut={signOut} theme={theme} toggleTheme={toggleTheme} />;
}
