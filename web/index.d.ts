// index.d.ts: the types of the npm package `loopwise` (web/dist/loopwise.mjs) and of the
// script tag's window.Loopwise (web/dist/loopwise.js): one API, two front doors.
// Checked by tests/web/package.test.mjs with `tsc --noEmit --strict` on a typed usage file
// (passes) and on misuses (each fails).

/** Where a file comes from: a URL (relative to the page) or its bytes. */
export type Source = string | URL | ArrayBuffer | Uint8Array;

/** init()'s options: the script tag's data-* attributes, by the same names. */
export interface InitOptions {
  /** The compiled program config (`loopwise-config compile`, a `.lwc`); default: the package's referral.lwc. */
  config?: Source;
  /** The ingest server; batches go to `<endpoint>/v1/outcomes`. Default: none, nothing is sent. */
  endpoint?: string;
  /** The site's public write key, put in every batch; also namespaces the stored state. Default ''. */
  writeKey?: string;
  /** The runtime; default: the package's loopwise.wasm. A compiled WebAssembly.Module is taken too. */
  wasm?: Source | WebAssembly.Module;
  /** The default model (a URL), used until the endpoint serves one; default: the package's loopwise.lwm. */
  model?: string | URL;
  /** Where a config with `placement.type` "inline" puts the prompt: an element, or a selector;
   * overrides the config's `placement.target`. */
  target?: string | Element;
}

/** One explanation line of a model decision: a feature and its contribution in log-odds. */
export interface Contribution {
  feature: string;
  contribution: number;
}

/** Why a decision prompted or not (README, "Loopwise.explain()"). */
export type DecisionCode =
  | 'shown' | 'not_now' | 'consent' | 'privacy' | 'history_unknown' | 'open_prompt' | 'cooldown'
  | 'cap' | 'gap' | 'quiet_hours' | 'session_age' | 'busy' | 'approval';

/** A decision, as track() resolves to it, the `decision` event carries and explain() returns. */
export interface Decision {
  /** The random decision id (what approve() takes). */
  id: string;
  /** Whether the prompt is (or, for 'approval', would be) shown. */
  prompt: boolean;
  /** Index into the config's variants, or -1 for no prompt. */
  variant: number;
  code: DecisionCode;
  /** The chosen action's name (a variant's, or 'none' / 'not_now'). */
  action: string;
  /** The probability the action was chosen with. */
  p: number;
  mode: 'rules' | 'model' | 'holdout';
  /** For people: "shown: model at milestone project_completed×3", "suppressed: cooldown 5d left". */
  reason: string;
  /** The model id in force, if any. */
  model?: string;
  /** The reporting segment (the nearest persona). */
  segment?: string;
  /** Model mode: the three features with the largest contribution. */
  top?: Contribution[];
}

/** One step of the config's ladder. */
export interface LadderStep {
  referrals: number;
  reward: string;
}

/** The share link a referee's page was opened with, from referral(). */
export interface Referral {
  /** The referrer's code. */
  code: string;
  /** The link's per-share token (32 lowercase hex), or null. */
  token: string | null;
}

/** The referrer's standing, from referrals(). */
export interface Referrals {
  code: string;
  /** Conversions the server counted for this device's code. */
  conversions: number;
  /** Index of the highest ladder step reached, -1 below the first. */
  tier: number;
  reward: string | null;
  next: LadderStep | null;
}

/** What status() reports: before start (or when it failed to start) only `started: false`. */
export type Status =
  | { started: false }
  | {
      started: true;
      /** The user's consent as the engine holds it. */
      consent: 'unset' | 'given' | 'refused' | 'unknown';
      /** Records waiting to reach the server (on the device). */
      pending: number;
      /** Records given up (the server refused them for good, or pending storage was full). */
      dropped: number;
      /** The last transport failure, e.g. "HTTP 503 ...", or null. */
      error: string | null;
      /** The model: none (the rules decide), ready (model mode), or no_data (a model loaded that
       * has no data for the configured variants: the rules decide, and explain() says so; also
       * a model live for its channel rankings alone, which orders the share options). */
      model: 'none' | 'ready' | 'no_data';
    };

/**
 * A share channel (the wire's `channel`, include/loopwise/wire.h LW_CHANNELS): the share sheet,
 * the clipboard, and the prompt's direct links. The config's `channels` picks and orders them.
 */
export type Channel = 'native' | 'copy' | 'email' | 'linkedin' | 'x' | 'whatsapp';

/** Options of preview(): passed to the prompt as they are. */
export interface PreviewOptions {
  /** The locale whose texts the prompt shows (a config `locales` key, e.g. 'de'). */
  locale?: string;
  /** A theme to show the prompt with, over the config's (the config's `theme` fields). */
  theme?: Record<string, string>;
}

/** How a shown prompt ended (close is the close button, the backdrop, the page going away). */
export type OutcomeKind = 'impression' | 'share' | 'copy' | 'dismiss' | 'close';

export interface Outcome {
  decision: string;
  kind: OutcomeKind;
}

/** The host events and what each listener gets. */
export interface EventMap {
  /** Started (true). Fires at once for a listener added after start. */
  ready: true;
  /** Not started (the error): the page works on without Loopwise. */
  error: unknown;
  /** Every decision. */
  decision: Decision;
  /** A decision that waits for approve(). */
  approval: Decision;
  /** A prompt is shown. */
  shown: Decision;
  /** The user shared or copied the link (kind 'share' or 'copy'). */
  shared: Outcome & { kind: 'share' | 'copy'; token: string; channel: Channel };
  /** The prompt went away without a share: 'dismiss' (Not now, Escape) or 'close'. */
  dismissed: Outcome & { kind: 'dismiss' | 'close' };
  /** Earlier name of `shown`, kept. */
  prompt: Decision;
  /** Every outcome of a shown prompt. */
  outcome: Outcome;
}

export type EventType = keyof EventMap;

/** Options of track(). */
export interface TrackOptions {
  /** A number the event carries, e.g. an NPS score. */
  value?: number;
  /** A label, e.g. a feature's name. */
  label?: string;
}

/** A queued call: [method, ...arguments], or a function called with the API. */
export type QueuedCall = [string, ...unknown[]] | ((api: Loopwise) => void);

/**
 * The runtime's API. Every method is safe to call at any time, waits until the runtime is
 * ready, and resolves to null if it failed to start or the call threw: no promise rejects.
 */
export interface Loopwise {
  /** true once able to decide; false if it failed to start (one console.error says why). */
  readonly ready: Promise<boolean>;
  /** The queue: push([method, ...args]) calls straight through once loaded. */
  readonly q: { push(...calls: QueuedCall[]): void };
  /** Report a usage event from the config's `events`: the decision at a milestone, else null. */
  track(name: string, options?: TrackOptions): Promise<Decision | null>;
  /** Let a decision that waited for approval (code 'approval') show its prompt. */
  approve(id: string): Promise<Decision | null>;
  /** Set a host attribute declared in the config's `attributes`; null clears it. */
  attribute(name: string, value: string | number | boolean | null): Promise<void | null>;
  /** Referee side: this visitor converted. */
  conversion(): Promise<void | null>;
  /** Record the user's consent; false also closes an open prompt in every tab. */
  consent(yes: boolean): Promise<boolean | null>;
  /** The host is busy (a form, a checkout): prompts wait; without an argument, reads it. */
  busy(flag?: boolean): boolean;
  /** The last decision, synchronously; null before the first (or before start). */
  explain(): Decision | null;
  /**
   * Referee side: the referral code and per-share token of the share link this page was opened
   * with (token null if it had none), null without one: for the host's backend's referee report.
   */
  referral(): Promise<Referral | null>;
  /** This device's random referral code (what its share links carry). */
  referralCode(): Promise<string | null>;
  /** The referrer's standing; offline the last answer; null if there is none. */
  referrals(): Promise<Referrals | null>;
  /** What the runtime holds and sends: consent, pending and dropped records, the last failure. */
  status(): Promise<Status | null>;
  /** Delete this device's state here (a new identity) and on the server; true once the server confirmed. */
  forget(): Promise<boolean | null>;
  /**
   * Show variant `id`'s prompt as a user would see it, logging nothing and changing no state (no
   * decision, no record, no cap or cooldown, no request to the ingest server). true once shown;
   * null for an unknown variant or while a prompt is open.
   */
  preview(id: string, options?: PreviewOptions): Promise<true | null>;
  /** Show (true) or remove (false) the overlay with explain() for the last decision. */
  debug(on: boolean): Promise<boolean | null>;
  /** Listen to a host event; returns a function that removes the listener. */
  on<K extends EventType>(type: K, listener: (event: EventMap[K]) => void): () => void;
}

/**
 * Start the runtime (once per page: a second call returns the first API) and return its API.
 * The programmatic twin of the script tag; defines no global.
 */
export function init(options?: InitOptions): Loopwise;

declare global {
  interface Window {
    /** The script tag's one global (web/dist/loopwise.js), or the queue before it loads. */
    Loopwise?: Loopwise | { q: QueuedCall[] };
  }
}
