// Types of @cartwise/tracker (src/index.mjs). Every call resolves or returns; none throws.

export type EventType =
  | 'page_viewed'
  | 'link_clicked'
  | 'search_performed'
  | 'product_added_to_basket'
  | 'product_removed_from_basket'
  | 'cart_validated'
  | 'order_status_changed'
  | 'experience_displayed'
  | 'experience_clicked';

/** An amount as the server reads it: a decimal string ("9.99") or a number. */
export type Money = string | number;

export interface PageViewedPayload {
  /** Defaults to location.href. */
  url?: string;
  page_type:
    | 'home' | 'category' | 'product' | 'search' | 'basket' | 'checkout'
    | 'order_confirmation' | 'account' | 'promotion' | 'other';
  product_id?: string;
  category?: string;
}
export interface LinkClickedPayload {
  /** Defaults to location.href. */
  url?: string;
  target_url: string;
  label?: string;
}
export interface SearchPerformedPayload {
  query: string;
  result_count: number;
}
export interface BasketChangePayload {
  product_id: string;
  quantity: number;
  unit_price: Money;
  brand?: string;
  category?: string;
}
export interface OrderLine extends BasketChangePayload {
  discount?: Money;
}
export interface CartValidatedPayload {
  order_id: string;
  lines: OrderLine[];
  total: Money;
}
export interface OrderStatusChangedPayload {
  order_id: string;
  status: 'shipped' | 'delivered' | 'cancelled' | 'returned' | 'refunded';
}
export interface ExperiencePayload {
  experience_id: string;
  campaign_id?: string;
}

/** One event as queued and sent (the contract's envelope, schema version 1). */
export interface ShopperEvent {
  event_id: string;
  type: EventType;
  shopper_id: string;
  session_id: string | null;
  occurred_at: string;
  schema_version: 1;
  payload: Record<string, unknown>;
}

/** What onError listeners receive, and what a refused call returns. Never carries a refused value. */
export interface TrackerError {
  /** e.g. personal_data_refused, too_deep, secret_key_required, invalid_shopper_id,
   * unknown_event_type, invalid_payload, event_too_large, invalid_config, opted_out,
   * not_initialized, queue_overflow, network_error, event_rejected, missing_signature,
   * invalid_experience, or the server's code (rate_limited, unavailable, unauthenticated,
   * origin_not_allowed, shopper_signature_missing, shopper_signature_invalid, ...). */
  code: string;
  message: string;
  source?: 'init' | 'track' | 'queue' | 'events' | 'experiences' | 'render' | 'plays';
  /** The path of the refused field ("payload.lines[0].email"), never its value. */
  field?: string;
  fields?: string[];
  status?: number;
  type?: EventType;
  event_id?: string;
  event_ids?: string[];
  dropped?: number;
  reasons?: Array<{ code: string; field: string; message: string }>;
  retry_in_ms?: number;
  [extra: string]: unknown;
}

export type TrackResult =
  | { ok: true; event: ShopperEvent }
  | { ok: false; error: TrackerError };

/** One experience of a decision (the decision engine's ShownExperience). */
export interface ShownExperience {
  experience_id: string;
  type: 'personalized_promotion' | 'gamified_promotion' | 'product_recommendation' | 'tension_cart' | string;
  campaign_id: string | null;
  details: Record<string, unknown>;
}

/** GET /v1/experiences's 200 answer: the shopper's current experiences. */
export interface CurrentExperiences {
  shopper_id: string;
  /** The event this decision answers. */
  event_id: string;
  occurred_at: string;
  decided_at: string;
  tree_version: string;
  node_id: string;
  experiences: ShownExperience[];
}

/** POST /v1/plays and /claim's answer. */
export interface Play {
  play_id: string;
  order_id: string;
  campaign_id: string;
  outcome: 'won' | 'lost';
  reason: 'drawn' | 'budget_exhausted' | string;
  prize_value: string;
  played_at: string;
  replayed: boolean;
  claimed: boolean;
  voided: boolean;
  paid: boolean;
}

export type PlayResult =
  | { ok: true; status: number; play: Play }
  | { ok: false; status?: number; error: TrackerError };

export interface TrackerConfig {
  /** Base URL of the cartwise APIs, used for every service without its own URL. */
  endpoint?: string;
  /** The ingest service (POST /v1/events). Default: endpoint. One of the two is required. */
  eventsUrl?: string;
  /** The experiences service (GET /v1/experiences). Default: endpoint. */
  experiencesUrl?: string;
  /** The plays service (POST /v1/plays). Default: endpoint. */
  playsUrl?: string;
  /** A publishable key (cwpk_...) in a web page; a retailer's back end may use its secret key. */
  key: string;
  /** The retailer's customer identifier (never an e-mail). */
  shopperId: string;
  /** Hex HMAC-SHA256 of the shopper, computed by the retailer's back end; needed with a
   * publishable key for onExperiences, play and claim. */
  shopperSignature?: string;
  onError?: (error: TrackerError) => void;
  /** Delay before a batch is sent (ms, 0..60000). Default 1000. */
  flushIntervalMs?: number;
  /** Events per request (1..500). Default 500. */
  maxBatchEvents?: number;
  /** Bytes per request (2048..524288). Default 60000 (keepalive and beacon sized). */
  maxBatchBytes?: number;
  /** Events kept while undelivered; the oldest are dropped past it. Default 1000. */
  maxQueueEvents?: number;
  /** Bytes kept while undelivered (4096..4194304). Default 524288. */
  maxQueueBytes?: number;
  /** A new session after this much silence (ms). Default 30 minutes. */
  sessionTimeoutMs?: number;
  /** How long the experiences API may wait for a decision (wait_ms, 0..10000). Default 5000. */
  waitMs?: number;
  /** Backoff base and cap (ms). Defaults 1000 and 60000. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Share of an experience in the viewport that counts as displayed (0..1). Default 0.5. */
  visibleRatio?: number;
}

/** What the tracker touches outside itself; each defaults to the browser's (tests inject fakes). */
export interface TrackerEnvironment {
  fetch?: typeof fetch | null;
  sendBeacon?: ((url: string, data: Blob | string) => boolean) | null;
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null;
  now?: () => number;
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  document?: Document | null;
  window?: Window | null;
  location?: { href: string } | null;
  navigator?: { onLine?: boolean; sendBeacon?: Navigator['sendBeacon'] } | null;
  crypto?: Pick<Crypto, 'getRandomValues'> & { randomUUID?: () => string } | null;
  Blob?: typeof Blob | null;
  IntersectionObserver?: typeof IntersectionObserver | null;
  AbortController?: typeof AbortController | null;
}

export interface RenderOptions {
  /** Class of the rendered node. Default "cartwise-experience". */
  className?: string;
  /** Empty the element first (default true). */
  replace?: boolean;
  onClick?: (experience: ShownExperience, event: Event) => void;
}

export interface TrackerStats {
  delivered: number;
  duplicates: number;
  rejected: number;
  beaconed: number;
  retries: number;
  queued: number;
  dropped: number;
  refused: number;
  /** false: storage is unusable, the queue lives in memory for this page. */
  persistent: boolean;
}

export interface Tracker {
  track(type: EventType, payload?: Record<string, unknown>): TrackResult;
  /** Also starts a new page view (experiences count as displayed once per page view). */
  pageViewed(payload: PageViewedPayload): TrackResult;
  linkClicked(payload: LinkClickedPayload): TrackResult;
  searchPerformed(payload: SearchPerformedPayload): TrackResult;
  productAddedToBasket(payload: BasketChangePayload): TrackResult;
  productRemovedFromBasket(payload: BasketChangePayload): TrackResult;
  /** Refused with secret_key_required under a publishable key (the retailer's back end sends it). */
  cartValidated(payload: CartValidatedPayload): TrackResult;
  /** Refused with secret_key_required under a publishable key (the retailer's back end sends it). */
  orderStatusChanged(payload: OrderStatusChangedPayload): TrackResult;
  experienceDisplayed(payload: ExperiencePayload): TrackResult;
  experienceClicked(payload: ExperiencePayload): TrackResult;
  /** Send what is queued now (unless the server's Retry-After still holds). */
  flush(): Promise<void>;
  /** Called with the decision of the latest delivered event; returns an unsubscribe. */
  onExperiences(callback: (current: CurrentExperiences) => void): () => void;
  /** Waits for the decision of an event the retailer's back end sent (e.g. a confirmed order,
   * its event_id from the back end); the answer reaches onExperiences. False if not listening. */
  expect(eventId: string): boolean;
  onError(callback: (error: TrackerError) => void): () => void;
  /** Renders a minimal experience into element (textContent only, http(s) images only) and observes it. */
  render(experience: ShownExperience, element: Element, options?: RenderOptions): Element | null;
  /** Sends experience_displayed once when element is seen, experience_clicked on each click; returns a stop. */
  observe(element: Element, experience: ShownExperience | ExperiencePayload, options?: RenderOptions): () => void;
  /** Plays the order a gamified_promotion's play_token grants. */
  play(playToken: string): Promise<PlayResult>;
  /** A winner's e-mail for the prize: the one personal datum the tracker ever sends. */
  claim(playId: string, playToken: string, email: string): Promise<PlayResult>;
  /** Stops sending, clears the queue and session, and is remembered in storage. */
  optOut(): void;
  optIn(): void;
  optedOut(): boolean;
  stats(): TrackerStats;
  /** Stops timers and listeners (the queue stays for the next page). */
  destroy(): void;
}

export declare function createTracker(config: TrackerConfig, env?: TrackerEnvironment): Tracker;

type NotInitialized = { ok: false; error: TrackerError };

/** The page's tracker (window.cartwise in dist/cartwise.min.js): init once, then the same calls. */
export interface Cartwise {
  readonly VERSION: string;
  readonly EVENT_TYPES: readonly EventType[];
  readonly FORBIDDEN_FIELDS: readonly string[];
  createTracker: typeof createTracker;
  init(config: TrackerConfig, env?: TrackerEnvironment): Tracker;
  track: Tracker['track'];
  pageViewed: Tracker['pageViewed'];
  linkClicked: Tracker['linkClicked'];
  searchPerformed: Tracker['searchPerformed'];
  productAddedToBasket: Tracker['productAddedToBasket'];
  productRemovedFromBasket: Tracker['productRemovedFromBasket'];
  cartValidated: Tracker['cartValidated'];
  orderStatusChanged: Tracker['orderStatusChanged'];
  experienceDisplayed: Tracker['experienceDisplayed'];
  experienceClicked: Tracker['experienceClicked'];
  flush(): Promise<void | NotInitialized>;
  onExperiences: Tracker['onExperiences'];
  expect: Tracker['expect'];
  onError: Tracker['onError'];
  render(experience: ShownExperience, element: Element, options?: RenderOptions): Element | null | NotInitialized;
  observe: Tracker['observe'];
  play: Tracker['play'];
  claim: Tracker['claim'];
  optOut(): void | NotInitialized;
  optIn(): void | NotInitialized;
  optedOut(): boolean | undefined;
  stats(): TrackerStats | undefined;
  destroy(): void;
}

export declare const cartwise: Cartwise;
export declare const VERSION: string;
export declare const EVENT_TYPES: readonly EventType[];
export declare const FORBIDDEN_FIELDS: readonly string[];
export declare const SCHEMA_VERSION: 1;
export default cartwise;

declare global {
  interface Window {
    cartwise: Cartwise;
  }
}
