// wasmlet's JavaScript prelude: the programming model on top of QuickJS.
//
// Evaluated once at deploy, inside the engine, before the function's module; its
// completion value is boot(namespace, config). Everything it sets up is captured by
// the memory snapshot, so an invocation pays only for start() and step().
//
// The C glue (c/wasmlet_js.c) hands over its primitives as `globalThis.__wasmlet`;
// they are captured here and removed from the global object.
//
// The Web APIs here follow the WHATWG Fetch, URL, Encoding, DOM (events, abort) and
// HTML (structuredClone, base64) standards closely enough for code written for Deno,
// Supabase Edge Functions and Workers; docs/javascript.md lists what is left out.
(function () {
  "use strict";

  const prim = globalThis.__wasmlet;
  delete globalThis.__wasmlet;

  const STEP_IDLE = -1;
  const STEP_DONE = -2;
  const STEP_FAILED = -3;
  const LOG_DEBUG = 0;
  const LOG_INFO = 1;
  const LOG_WARN = 2;
  const LOG_ERROR = 3;
  const TEXT = "text/plain; charset=utf-8";
  const JSON_TYPE = "application/json";
  const BYTES = "application/octet-stream";
  const FORM = "application/x-www-form-urlencoded;charset=UTF-8";
  const REQUEST_TEXT = "text/plain;charset=UTF-8";

  const define = (target, name, value) =>
    Object.defineProperty(target, name, { value, writable: true, configurable: true });

  // Class names as the Web platform shows them (`Object.prototype.toString`).
  const tag = (cls, name) =>
    Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: name, configurable: true });

  // ---- DOMException ----------------------------------------------------------------

  const DOM_CODES = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4,
    InvalidCharacterError: 5, NoModificationAllowedError: 7, NotFoundError: 8,
    NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12, InvalidModificationError: 13,
    NamespaceError: 14, InvalidAccessError: 15, TypeMismatchError: 17, SecurityError: 18,
    NetworkError: 19, AbortError: 20, URLMismatchError: 21, QuotaExceededError: 22,
    TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };

  class DOMException extends Error {
    constructor(message = "", name = "Error") {
      super(String(message));
      define(this, "name", String(name));
    }
    get code() {
      return DOM_CODES[this.name] || 0;
    }
  }
  tag(DOMException, "DOMException");

  // ---- text and bytes ---------------------------------------------------------

  function toBytes(value) {
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    if (ArrayBuffer.isView(value)) {
      return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    }
    throw new TypeError("expected an ArrayBuffer or a typed array");
  }

  const isBytes = (value) => value instanceof ArrayBuffer || ArrayBuffer.isView(value);

  const utf8 = (text) => new Uint8Array(prim.encodeUtf8(text));

  // A string without lone surrogates (each becomes U+FFFD), as USVString wants.
  function wellFormed(text) {
    let out = "";
    for (const ch of String(text)) {
      const code = ch.codePointAt(0);
      out += code >= 0xd800 && code <= 0xdfff ? "\ufffd" : ch;
    }
    return out;
  }

  // The byte length of the UTF-8 sequence a lead byte starts (0 for an invalid one).
  function sequenceLength(lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xc2 && lead <= 0xdf) return 2;
    if (lead >= 0xe0 && lead <= 0xef) return 3;
    if (lead >= 0xf0 && lead <= 0xf4) return 4;
    return 0;
  }

  function validUtf8(bytes) {
    for (let i = 0; i < bytes.length; ) {
      const n = sequenceLength(bytes[i]);
      if (!n || i + n > bytes.length) return false;
      for (let k = 1; k < n; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return false;
      const lead = bytes[i];
      const next = bytes[i + 1];
      if (lead === 0xe0 && next < 0xa0) return false; // overlong
      if (lead === 0xed && next > 0x9f) return false; // a surrogate
      if (lead === 0xf0 && next < 0x90) return false; // overlong
      if (lead === 0xf4 && next > 0x8f) return false; // past U+10FFFF
      i += n;
    }
    return true;
  }

  // How many bytes at the end of `bytes` start a sequence that is not complete yet.
  function incompleteTail(bytes) {
    for (let back = 1; back <= Math.min(3, bytes.length); back++) {
      const byte = bytes[bytes.length - back];
      if ((byte & 0xc0) !== 0x80) {
        const n = sequenceLength(byte);
        return n > back ? back : 0;
      }
    }
    return 0;
  }

  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return utf8(String(input));
    }
    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) {
        throw new TypeError("TextEncoder.encodeInto: the destination must be a Uint8Array");
      }
      let read = 0;
      let written = 0;
      for (const ch of String(source)) {
        const bytes = utf8(ch);
        if (written + bytes.length > destination.length) break;
        destination.set(bytes, written);
        written += bytes.length;
        read += ch.length;
      }
      return { read, written };
    }
  }
  tag(TextEncoder, "TextEncoder");

  const UTF8_LABELS = new Set(["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8",
    "unicode20utf8", "x-unicode20utf8"]);

  class TextDecoder {
    constructor(label = "utf-8", options = {}) {
      const name = String(label).trim().toLowerCase();
      if (!UTF8_LABELS.has(name)) {
        throw new RangeError(`TextDecoder: only utf-8 is supported, not ${label}`);
      }
      define(this, "_fatal", Boolean(options && options.fatal));
      define(this, "_ignoreBOM", Boolean(options && options.ignoreBOM));
      define(this, "_pending", new Uint8Array(0));
      define(this, "_started", false);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this._fatal;
    }
    get ignoreBOM() {
      return this._ignoreBOM;
    }
    decode(input, options = {}) {
      let bytes = input === undefined ? new Uint8Array(0) : toBytes(input);
      if (this._pending.length) {
        const joined = new Uint8Array(this._pending.length + bytes.length);
        joined.set(this._pending);
        joined.set(bytes, this._pending.length);
        bytes = joined;
      }
      const stream = Boolean(options && options.stream);
      const keep = stream ? incompleteTail(bytes) : 0;
      this._pending = bytes.slice(bytes.length - keep);
      bytes = bytes.subarray(0, bytes.length - keep);
      if (this._fatal && !validUtf8(bytes)) {
        this._pending = new Uint8Array(0);
        this._started = false;
        throw new TypeError("TextDecoder: the data is not valid UTF-8");
      }
      if (!this._started && !this._ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb &&
          bytes[2] === 0xbf) {
        bytes = bytes.subarray(3);
      }
      this._started = stream && (this._started || bytes.length > 0);
      return prim.decodeUtf8(bytes);
    }
  }
  tag(TextDecoder, "TextDecoder");

  const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  function btoa(input) {
    if (arguments.length === 0) throw new TypeError("btoa: 1 argument required");
    const text = String(input);
    let out = "";
    for (let i = 0; i < text.length; i += 3) {
      const a = text.charCodeAt(i);
      const b = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      const c = i + 2 < text.length ? text.charCodeAt(i + 2) : 0;
      if (a > 255 || b > 255 || c > 255) {
        throw new DOMException("btoa: the string has characters outside Latin-1",
          "InvalidCharacterError");
      }
      const n = (a << 16) | (b << 8) | c;
      out += BASE64[n >> 18] + BASE64[(n >> 12) & 63];
      out += i + 1 < text.length ? BASE64[(n >> 6) & 63] : "=";
      out += i + 2 < text.length ? BASE64[n & 63] : "=";
    }
    return out;
  }

  function atob(input) {
    if (arguments.length === 0) throw new TypeError("atob: 1 argument required");
    let text = String(input).replace(/[\t\n\f\r ]/g, "");
    if (text.length % 4 === 0) text = text.replace(/==?$/, "");
    if (text.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(text)) {
      throw new DOMException("atob: the string is not valid base64", "InvalidCharacterError");
    }
    let out = "";
    let bits = 0;
    let value = 0;
    for (const ch of text) {
      value = ((value << 6) | BASE64.indexOf(ch)) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((value >> bits) & 255);
      }
    }
    return out;
  }

  // ---- console -------------------------------------------------------------------

  function inspect(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) {
      const stack = userStack(value);
      return `${value.name}: ${value.message}${stack ? "\n" + stack.replace(/\n$/, "") : ""}`;
    }
    if (typeof value === "function") return `[Function: ${value.name || "anonymous"}]`;
    if (typeof value !== "object" || value === null) return String(value);
    const seen = new Set();
    try {
      const text = JSON.stringify(value, function (key, item) {
        if (typeof item === "bigint") return `${item}n`;
        if (typeof item === "function") return `[Function: ${item.name || "anonymous"}]`;
        if (item === undefined) return "undefined";
        if (item instanceof Error) return `${item.name}: ${item.message}`;
        if (typeof item === "object" && item !== null) {
          if (seen.has(item)) return "[Circular]";
          seen.add(item);
          if (item instanceof Map) return { Map: [...item.entries()] };
          if (item instanceof Headers) return { Headers: [...item] };
          if (item instanceof URLSearchParams) return { URLSearchParams: item.toString() };
          if (item instanceof Request) return { Request: { method: item.method, url: item.url } };
          if (item instanceof Response) return { Response: { status: item.status, url: item.url } };
          if (item instanceof Set) return { Set: [...item.values()] };
        }
        return item;
      });
      return text === undefined ? String(value) : text;
    } catch (error) {
      return String(value);
    }
  }

  function logger(level) {
    return function (...args) {
      prim.log(level, args.map(inspect).join(" "));
    };
  }

  const console = {
    debug: logger(LOG_DEBUG),
    log: logger(LOG_INFO),
    info: logger(LOG_INFO),
    warn: logger(LOG_WARN),
    error: logger(LOG_ERROR),
    trace: logger(LOG_DEBUG),
  };

  // ---- timers ---------------------------------------------------------------------

  let timers = [];
  let nextTimerId = 1;

  function addTimer(callback, delay, args, repeat) {
    if (typeof callback !== "function") throw new TypeError("the callback must be a function");
    const ms = Math.max(0, Number(delay) || 0);
    const id = nextTimerId++;
    timers.push({ id, due: prim.monotonicMs() + ms, ms, callback, args, repeat });
    return id;
  }

  const setTimeout = (callback, delay, ...args) => addTimer(callback, delay, args, false);
  const setInterval = (callback, delay, ...args) => addTimer(callback, delay, args, true);
  const clearTimeout = (id) => {
    timers = timers.filter((timer) => timer.id !== id);
  };
  const queueMicrotask = (callback) => {
    Promise.resolve().then(callback);
  };

  // ---- events and abort signals ---------------------------------------------------

  class Event {
    constructor(type, init = {}) {
      if (arguments.length === 0) throw new TypeError("Event: 1 argument required");
      define(this, "_type", String(type));
      define(this, "_cancelable", Boolean(init && init.cancelable));
      define(this, "_canceled", false);
      define(this, "_stopped", false);
      define(this, "_target", null);
      define(this, "_timeStamp", performance.now());
    }
    get type() {
      return this._type;
    }
    get target() {
      return this._target;
    }
    get currentTarget() {
      return this._target;
    }
    get cancelable() {
      return this._cancelable;
    }
    get defaultPrevented() {
      return this._canceled;
    }
    get timeStamp() {
      return this._timeStamp;
    }
    preventDefault() {
      if (this._cancelable) this._canceled = true;
    }
    stopPropagation() {}
    stopImmediatePropagation() {
      this._stopped = true;
    }
  }
  tag(Event, "Event");

  class EventTarget {
    constructor() {
      define(this, "_listeners", new Map());
    }
    addEventListener(type, listener, options = {}) {
      if (listener === null || listener === undefined) return;
      const once = typeof options === "object" && options !== null && Boolean(options.once);
      const signal = typeof options === "object" && options !== null ? options.signal : undefined;
      if (signal && signal.aborted) return;
      const key = String(type);
      const list = this._listeners.get(key) || [];
      if (list.some((entry) => entry.listener === listener)) return;
      list.push({ listener, once });
      this._listeners.set(key, list);
      if (signal) signal.addEventListener("abort", () => this.removeEventListener(key, listener));
    }
    removeEventListener(type, listener) {
      const key = String(type);
      const list = this._listeners.get(key);
      if (list) this._listeners.set(key, list.filter((entry) => entry.listener !== listener));
    }
    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("dispatchEvent: expected an Event");
      event._target = this;
      const handler = this[`on${event.type}`];
      const listeners = [...(this._listeners.get(event.type) || [])];
      if (typeof handler === "function") listeners.unshift({ listener: handler, once: false });
      for (const entry of listeners) {
        if (entry.once) this.removeEventListener(event.type, entry.listener);
        try {
          if (typeof entry.listener === "function") entry.listener.call(this, event);
          else if (entry.listener && typeof entry.listener.handleEvent === "function") {
            entry.listener.handleEvent(event);
          }
        } catch (error) {
          report(error); // as a browser does: reported, and the other listeners still run
        }
        if (event._stopped) break;
      }
      return !event._canceled;
    }
  }
  tag(EventTarget, "EventTarget");

  const SIGNAL_KEY = Symbol("AbortSignal");

  const abortError = () => new DOMException("This operation was aborted", "AbortError");
  const timeoutError = () => new DOMException("The signal timed out", "TimeoutError");

  class AbortSignal extends EventTarget {
    constructor(key) {
      if (key !== SIGNAL_KEY) throw new TypeError("Illegal constructor");
      super();
      define(this, "_aborted", false);
      define(this, "_reason", undefined);
      // When this signal aborts by itself at the latest (AbortSignal.timeout, or any()
      // over one): fetch hands the time left to the host as the request's timeout.
      define(this, "_deadline", Infinity);
      this.onabort = null;
    }
    get aborted() {
      return this._aborted;
    }
    get reason() {
      return this._reason;
    }
    throwIfAborted() {
      if (this._aborted) throw this._reason;
    }
    _abort(reason) {
      if (this._aborted) return;
      this._aborted = true;
      this._reason = reason === undefined ? abortError() : reason;
      this.dispatchEvent(new Event("abort"));
    }
    static abort(reason) {
      const signal = new AbortSignal(SIGNAL_KEY);
      signal._abort(reason);
      return signal;
    }
    static timeout(ms) {
      const delay = Number(ms);
      if (!Number.isFinite(delay) || delay < 0) {
        throw new TypeError(`AbortSignal.timeout: ${ms} is not a number of milliseconds`);
      }
      const signal = new AbortSignal(SIGNAL_KEY);
      signal._deadline = prim.monotonicMs() + delay;
      setTimeout(() => signal._abort(timeoutError()), delay);
      return signal;
    }
    static any(signals) {
      const signal = new AbortSignal(SIGNAL_KEY);
      const sources = [...signals];
      for (const source of sources) {
        if (!(source instanceof AbortSignal)) throw new TypeError("AbortSignal.any: not a signal");
        if (source.aborted) {
          signal._abort(source.reason);
          return signal;
        }
      }
      for (const source of sources) {
        signal._deadline = Math.min(signal._deadline, source._deadline);
        source.addEventListener("abort", () => signal._abort(source.reason), { once: true });
      }
      return signal;
    }
  }
  tag(AbortSignal, "AbortSignal");

  class AbortController {
    constructor() {
      define(this, "_signal", new AbortSignal(SIGNAL_KEY));
    }
    get signal() {
      return this._signal;
    }
    abort(reason) {
      this._signal._abort(reason);
    }
  }
  tag(AbortController, "AbortController");

  // ---- URL and URLSearchParams ----------------------------------------------------

  const SPECIAL_PORTS = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443",
    "ftp:": "21", "file:": "" };
  const isSpecial = (protocol) => Object.prototype.hasOwnProperty.call(SPECIAL_PORTS, protocol);

  // Percent-encode sets (URL standard), beyond C0 controls and non-ASCII.
  const FRAGMENT_SET = " \"<>`";
  const QUERY_SET = " \"#<>";
  const SPECIAL_QUERY_SET = " \"#<>'";
  const PATH_SET = " \"#<>?`{}";
  const USERINFO_SET = " \"#<>?`{}/:;=@[\\]^|";

  const hex = (byte) => "%" + (byte < 16 ? "0" : "") + byte.toString(16).toUpperCase();

  function percentEncode(text, set) {
    let out = "";
    for (const ch of wellFormed(text)) {
      const code = ch.codePointAt(0);
      if (code < 0x21 || code > 0x7e || set.includes(ch)) {
        for (const byte of utf8(ch)) out += hex(byte);
      } else {
        out += ch;
      }
    }
    return out;
  }

  function percentDecode(text) {
    if (!text.includes("%")) return utf8(text);
    const source = utf8(text);
    const out = [];
    for (let i = 0; i < source.length; i++) {
      const byte = source[i];
      if (byte === 0x25 && i + 2 < source.length &&
          /^[0-9A-Fa-f]{2}$/.test(String.fromCharCode(source[i + 1], source[i + 2]))) {
        out.push(parseInt(String.fromCharCode(source[i + 1], source[i + 2]), 16));
        i += 2;
      } else {
        out.push(byte);
      }
    }
    return new Uint8Array(out);
  }

  // An IPv4 part: decimal, 0x hex or 0-prefixed octal (the URL standard's forms).
  function ipv4Number(part) {
    if (part === "") return NaN;
    if (/^0[xX][0-9a-fA-F]*$/.test(part)) return part.length === 2 ? 0 : parseInt(part.slice(2), 16);
    if (/^0[0-7]+$/.test(part)) return parseInt(part.slice(1), 8);
    if (/^[0-9]+$/.test(part)) return parseInt(part, 10);
    return NaN;
  }

  // "127.1", "0x7f.0.0.1", "2130706433" -> "127.0.0.1"; null when the host is not one.
  function parseIPv4(host) {
    const parts = host.split(".");
    if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop();
    const last = parts[parts.length - 1];
    if (!/^(?:[0-9]+|0[xX][0-9a-fA-F]*)$/.test(last)) return null; // not "ends in a number"
    if (parts.length > 4) throw new TypeError("Invalid URL: bad IPv4 address");
    const numbers = parts.map(ipv4Number);
    if (numbers.some((n) => Number.isNaN(n))) throw new TypeError("Invalid URL: bad IPv4 address");
    if (numbers.slice(0, -1).some((n) => n > 255) ||
        numbers[numbers.length - 1] >= 256 ** (5 - numbers.length)) {
      throw new TypeError("Invalid URL: IPv4 address out of range");
    }
    let value = numbers[numbers.length - 1];
    numbers.slice(0, -1).forEach((n, i) => {
      value += n * 256 ** (3 - i);
    });
    const bytes = [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256);
    return bytes.join(".");
  }

  function parseIPv6(text) {
    // Validated and lower-cased, not compressed again: `[::1]`, `[fd00::5]`.
    if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(":")) {
      throw new TypeError("Invalid URL: bad IPv6 address");
    }
    return `[${text.toLowerCase()}]`;
  }

  const FORBIDDEN_HOST = /[\u0000\t\n\r #/:<>?@[\\\]^|]/;
  const FORBIDDEN_DOMAIN = /[\u0000-\u001f\t\n\r #%/:<>?@[\\\]^|\u007f]/;

  function parseHost(text, special) {
    if (text.startsWith("[")) {
      if (!text.endsWith("]")) throw new TypeError("Invalid URL: unclosed IPv6 address");
      return parseIPv6(text.slice(1, -1));
    }
    if (!special) {
      if (FORBIDDEN_HOST.test(text)) throw new TypeError("Invalid URL: forbidden host code point");
      return percentEncode(text, "");
    }
    const domain = prim.decodeUtf8(percentDecode(text)).toLowerCase();
    if (!domain) throw new TypeError("Invalid URL: empty host");
    if (FORBIDDEN_DOMAIN.test(domain)) {
      throw new TypeError("Invalid URL: forbidden host code point");
    }
    if (/[^\u0000-\u007f]/.test(domain)) {
      throw new TypeError("Invalid URL: non-ASCII host names must be written in their xn-- form");
    }
    return parseIPv4(domain) || domain;
  }

  const SINGLE_DOT = /^(?:\.|%2e)$/i;
  const DOUBLE_DOT = /^(?:\.|%2e)(?:\.|%2e)$/i;

  // Path segments of `text` appended to `base` (a list), with "." and ".." resolved.
  function parsePath(text, special, base = []) {
    const segments = [...base];
    const parts = (special ? text.replace(/\\/g, "/") : text).split("/");
    parts.forEach((part, index) => {
      const last = index === parts.length - 1;
      if (DOUBLE_DOT.test(part)) {
        if (segments.length) segments.pop();
        if (last) segments.push("");
      } else if (SINGLE_DOT.test(part)) {
        if (last) segments.push("");
      } else {
        segments.push(percentEncode(part, PATH_SET));
      }
    });
    return segments;
  }

  // A parsed URL record: {protocol, username, password, host (null: none), port,
  // path (a list of segments, or a string for an opaque path), query, fragment}.
  function parseURL(input, base) {
    let text = String(input).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "");
    text = text.replace(/[\t\n\r]/g, "");
    const record = {
      protocol: "", username: "", password: "", host: null, port: "",
      path: [], query: null, fragment: null,
    };
    const hash = text.indexOf("#");
    if (hash >= 0) {
      record.fragment = percentEncode(text.slice(hash + 1), FRAGMENT_SET);
      text = text.slice(0, hash);
    }
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text);
    if (scheme) {
      record.protocol = scheme[1].toLowerCase() + ":";
      text = text.slice(scheme[0].length);
    } else {
      if (!base) throw new TypeError(`Invalid URL: '${input}'`);
      if (typeof base.path === "string" && text) throw new TypeError(`Invalid URL: '${input}'`);
      record.protocol = base.protocol;
    }
    const special = isSpecial(record.protocol);
    const question = text.indexOf("?");
    if (question >= 0) {
      record.query = percentEncode(text.slice(question + 1),
        special ? SPECIAL_QUERY_SET : QUERY_SET);
      text = text.slice(0, question);
    }
    const slashes = special ? /^[/\\]{2}/ : /^\/\//;
    const relative = base && (!scheme || (special && base.protocol === record.protocol &&
      !/^[/\\]/.test(text)));
    if (relative && !slashes.test(text)) {
      Object.assign(record, {
        username: base.username, password: base.password, host: base.host, port: base.port,
      });
      if (typeof base.path === "string") {
        record.path = base.path;
        if (question < 0) record.query = base.query;
      } else if (text === "") {
        record.path = [...base.path];
        if (question < 0) record.query = base.query;
      } else if (/^[/\\]/.test(text) && (special || text[0] === "/")) {
        record.path = parsePath(text.slice(1), special);
      } else {
        record.path = parsePath(text, special, base.path.slice(0, -1));
      }
      return record;
    }
    if (slashes.test(text) || (special && record.protocol !== "file:")) {
      text = special ? text.replace(/^[/\\]*/, "") : text.slice(2);
      const end = text.search(special ? /[/\\]/ : /\//);
      const authority = end < 0 ? text : text.slice(0, end);
      text = end < 0 ? "" : text.slice(end);
      const at = authority.lastIndexOf("@");
      if (at >= 0) {
        const info = authority.slice(0, at);
        const colon = info.indexOf(":");
        record.username = percentEncode(colon < 0 ? info : info.slice(0, colon), USERINFO_SET);
        record.password = colon < 0 ? "" : percentEncode(info.slice(colon + 1), USERINFO_SET);
      }
      const hostport = authority.slice(at + 1);
      const portAt = hostport.search(/:[^:\]]*$/);
      const host = portAt < 0 ? hostport : hostport.slice(0, portAt);
      const port = portAt < 0 ? "" : hostport.slice(portAt + 1);
      if (port !== "") {
        if (!/^[0-9]+$/.test(port) || Number(port) > 65535) {
          throw new TypeError(`Invalid URL: bad port in '${input}'`);
        }
        record.port = String(Number(port));
        if (record.port === SPECIAL_PORTS[record.protocol]) record.port = "";
      }
      if (record.protocol === "file:") {
        record.host = host ? parseHost(host, true) : "";
        if (record.host === "localhost") record.host = "";
      } else if (host === "" && special) {
        throw new TypeError(`Invalid URL: '${input}' has no host`);
      } else {
        record.host = host === "" ? "" : parseHost(host, special);
      }
      if (record.host === "" && (record.username || record.password || record.port)) {
        throw new TypeError(`Invalid URL: '${input}' has credentials or a port but no host`);
      }
      record.path = parsePath(text.replace(/^[/\\]/, ""), special);
      if (!text && !special) record.path = [];
      return record;
    }
    if (record.protocol === "file:") {
      record.host = "";
      record.path = parsePath(text.replace(/^[/\\]*/, ""), true);
      return record;
    }
    if (text.startsWith("/")) {
      record.path = parsePath(text.slice(1), false);
    } else {
      record.path = percentEncode(text, ""); // an opaque path: mailto:, data:, urn:
    }
    return record;
  }

  function serializePath(record) {
    if (typeof record.path === "string") return record.path;
    const joined = record.path.map((segment) => "/" + segment).join("");
    return record.host === null && joined.startsWith("//") ? "/." + joined : joined;
  }

  function serializeURL(record, withFragment = true) {
    let out = record.protocol;
    if (record.host !== null) {
      out += "//";
      if (record.username || record.password) {
        out += record.username + (record.password ? ":" + record.password : "") + "@";
      }
      out += record.host + (record.port ? ":" + record.port : "");
    }
    out += serializePath(record);
    if (record.query !== null) out += "?" + record.query;
    if (withFragment && record.fragment !== null) out += "#" + record.fragment;
    return out;
  }

  class URL {
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("URL: 1 argument required");
      const baseRecord = base === undefined ? null : new URL(base)._record;
      define(this, "_record", parseURL(url instanceof URL ? url.href : url, baseRecord));
      define(this, "_params", new URLSearchParams(this._record.query || ""));
      this._params._url = this;
    }
    static canParse(url, base) {
      try {
        new URL(url, base);
        return true;
      } catch (error) {
        return false;
      }
    }
    static parse(url, base) {
      try {
        return new URL(url, base);
      } catch (error) {
        return null;
      }
    }
    get href() {
      return serializeURL(this._record);
    }
    set href(value) {
      this._record = parseURL(value, null);
      this._params._pairs = new URLSearchParams(this._record.query || "")._pairs;
    }
    get origin() {
      const record = this._record;
      if (!isSpecial(record.protocol) || record.protocol === "file:") return "null";
      return `${record.protocol}//${this.host}`;
    }
    get protocol() {
      return this._record.protocol;
    }
    set protocol(value) {
      const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):?/.exec(String(value));
      if (!scheme) return;
      const protocol = scheme[1].toLowerCase() + ":";
      if (isSpecial(protocol) !== isSpecial(this._record.protocol)) return;
      this._record.protocol = protocol;
      if (this._record.port === SPECIAL_PORTS[protocol]) this._record.port = "";
    }
    get username() {
      return this._record.username;
    }
    set username(value) {
      if (this._record.host) this._record.username = percentEncode(value, USERINFO_SET);
    }
    get password() {
      return this._record.password;
    }
    set password(value) {
      if (this._record.host) this._record.password = percentEncode(value, USERINFO_SET);
    }
    get host() {
      const record = this._record;
      if (record.host === null) return "";
      return record.host + (record.port ? ":" + record.port : "");
    }
    set host(value) {
      if (typeof this._record.path === "string") return;
      try {
        const parsed = parseURL(`${this._record.protocol}//${value}`, null);
        this._record.host = parsed.host;
        this._record.port = parsed.port;
      } catch (error) {
        // an invalid host is ignored, as the standard says
      }
    }
    get hostname() {
      return this._record.host === null ? "" : this._record.host;
    }
    set hostname(value) {
      if (typeof this._record.path === "string") return;
      try {
        const parsed = parseURL(`${this._record.protocol}//${value}`, null);
        this._record.host = parsed.host;
      } catch (error) {
        // ignored
      }
    }
    get port() {
      return this._record.port;
    }
    set port(value) {
      const text = String(value);
      if (text === "") {
        this._record.port = "";
        return;
      }
      const digits = /^[0-9]+/.exec(text);
      if (!digits || Number(digits[0]) > 65535 || !this._record.host) return;
      const port = String(Number(digits[0]));
      this._record.port = port === SPECIAL_PORTS[this._record.protocol] ? "" : port;
    }
    get pathname() {
      return serializePath(this._record);
    }
    set pathname(value) {
      if (typeof this._record.path === "string") return;
      const special = isSpecial(this._record.protocol);
      const text = String(value).replace(special ? /^[/\\]/ : /^\//, "");
      this._record.path = parsePath(text, special);
    }
    get search() {
      const query = this._record.query;
      return query ? "?" + query : "";
    }
    set search(value) {
      const text = String(value).replace(/^\?/, "");
      const special = isSpecial(this._record.protocol);
      this._record.query = text === "" ? null : percentEncode(text, special ? SPECIAL_QUERY_SET : QUERY_SET);
      this._params._pairs = new URLSearchParams(text)._pairs;
    }
    get searchParams() {
      return this._params;
    }
    get hash() {
      const fragment = this._record.fragment;
      return fragment ? "#" + fragment : "";
    }
    set hash(value) {
      const text = String(value).replace(/^#/, "");
      this._record.fragment = text === "" ? null : percentEncode(text, FRAGMENT_SET);
    }
    toString() {
      return this.href;
    }
    toJSON() {
      return this.href;
    }
  }
  tag(URL, "URL");

  // application/x-www-form-urlencoded, as URLSearchParams writes it.
  function formEncode(text) {
    return encodeURIComponent(wellFormed(text))
      .replace(/[!'()~]/g, (ch) => hex(ch.charCodeAt(0)))
      .replace(/%20/g, "+");
  }

  const formDecode = (text) => prim.decodeUtf8(percentDecode(text.replace(/\+/g, " ")));

  class URLSearchParams {
    constructor(init = "") {
      define(this, "_pairs", []);
      define(this, "_url", null);
      if (init instanceof URLSearchParams) {
        this._pairs = init._pairs.map((pair) => [pair[0], pair[1]]);
      } else if (init !== null && typeof init === "object" &&
                 typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const items = [...pair];
          if (items.length !== 2) {
            throw new TypeError("URLSearchParams: each pair must have exactly two items");
          }
          this._pairs.push([wellFormed(items[0]), wellFormed(items[1])]);
        }
      } else if (init !== null && typeof init === "object") {
        for (const name of Object.keys(init)) {
          this._pairs.push([wellFormed(name), wellFormed(init[name])]);
        }
      } else if (init !== undefined && init !== null) {
        const text = String(init);
        for (const part of (text.startsWith("?") ? text.slice(1) : text).split("&")) {
          if (!part) continue;
          const eq = part.indexOf("=");
          const name = eq < 0 ? part : part.slice(0, eq);
          const value = eq < 0 ? "" : part.slice(eq + 1);
          this._pairs.push([formDecode(name), formDecode(value)]);
        }
      }
    }
    _update() {
      if (this._url) {
        const text = this.toString();
        this._url._record.query = text === "" ? null : text;
      }
    }
    get size() {
      return this._pairs.length;
    }
    get(name) {
      const key = String(name);
      const found = this._pairs.find((pair) => pair[0] === key);
      return found ? found[1] : null;
    }
    getAll(name) {
      const key = String(name);
      return this._pairs.filter((pair) => pair[0] === key).map((pair) => pair[1]);
    }
    has(name, value) {
      const key = String(name);
      return this._pairs.some((pair) => pair[0] === key &&
        (value === undefined || pair[1] === String(value)));
    }
    append(name, value) {
      this._pairs.push([wellFormed(name), wellFormed(value)]);
      this._update();
    }
    set(name, value) {
      const key = wellFormed(name);
      const index = this._pairs.findIndex((pair) => pair[0] === key);
      if (index < 0) {
        this._pairs.push([key, wellFormed(value)]);
      } else {
        this._pairs[index] = [key, wellFormed(value)];
        this._pairs = this._pairs.filter((pair, i) => i <= index || pair[0] !== key);
      }
      this._update();
    }
    delete(name, value) {
      const key = String(name);
      this._pairs = this._pairs.filter((pair) => pair[0] !== key ||
        (value !== undefined && pair[1] !== String(value)));
      this._update();
    }
    sort() {
      const indexed = this._pairs.map((pair, index) => [pair, index]);
      indexed.sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]));
      this._pairs = indexed.map((item) => item[0]);
      this._update();
    }
    *entries() {
      for (const pair of this._pairs) yield [pair[0], pair[1]];
    }
    *keys() {
      for (const pair of this._pairs) yield pair[0];
    }
    *values() {
      for (const pair of this._pairs) yield pair[1];
    }
    forEach(callback, thisArg) {
      for (const [name, value] of this._pairs) callback.call(thisArg, value, name, this);
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      return this._pairs.map((pair) => `${formEncode(pair[0])}=${formEncode(pair[1])}`).join("&");
    }
  }
  tag(URLSearchParams, "URLSearchParams");

  // ---- Fetch: Headers, Request, Response -------------------------------------------

  const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

  function headerName(name) {
    const text = String(name);
    if (!HEADER_NAME.test(text)) throw new TypeError(`invalid header name: ${text}`);
    return text.toLowerCase();
  }

  function headerValue(value) {
    const text = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(text)) throw new TypeError(`invalid header value: ${JSON.stringify(text)}`);
    return text;
  }

  class Headers {
    constructor(init) {
      define(this, "_pairs", []);
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        this._pairs = init._pairs.map((pair) => [pair[0], pair[1]]);
      } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const items = [...pair];
          if (items.length !== 2) throw new TypeError("Headers: each pair must have two items");
          this.append(items[0], items[1]);
        }
      } else if (typeof init === "object") {
        for (const name of Object.keys(init)) this.append(name, init[name]);
      } else {
        throw new TypeError("Headers: expected an object or a list of pairs");
      }
    }
    append(name, value) {
      this._pairs.push([headerName(name), headerValue(value)]);
    }
    set(name, value) {
      const key = headerName(name);
      const text = headerValue(value);
      const index = this._pairs.findIndex((pair) => pair[0] === key);
      if (index < 0) {
        this._pairs.push([key, text]);
      } else {
        this._pairs[index] = [key, text];
        this._pairs = this._pairs.filter((pair, i) => i <= index || pair[0] !== key);
      }
    }
    get(name) {
      const key = headerName(name);
      const values = this._pairs.filter((pair) => pair[0] === key).map((pair) => pair[1]);
      return values.length ? values.join(", ") : null;
    }
    getSetCookie() {
      return this._pairs.filter((pair) => pair[0] === "set-cookie").map((pair) => pair[1]);
    }
    has(name) {
      const key = headerName(name);
      return this._pairs.some((pair) => pair[0] === key);
    }
    delete(name) {
      const key = headerName(name);
      this._pairs = this._pairs.filter((pair) => pair[0] !== key);
    }
    // Sorted by name, values of a name joined with ", "; set-cookie one by one.
    *entries() {
      const names = [...new Set(this._pairs.map((pair) => pair[0]))].sort();
      for (const name of names) {
        if (name === "set-cookie") {
          for (const value of this.getSetCookie()) yield [name, value];
        } else {
          yield [name, this.get(name)];
        }
      }
    }
    *keys() {
      for (const pair of this.entries()) yield pair[0];
    }
    *values() {
      for (const pair of this.entries()) yield pair[1];
    }
    forEach(callback, thisArg) {
      for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
    }
    [Symbol.iterator]() {
      return this.entries();
    }
  }
  tag(Headers, "Headers");

  // A body as bytes and the content-type it implies (Fetch's "extract a body").
  function extractBody(body) {
    if (body === undefined || body === null) return { bytes: null, type: null };
    if (typeof body === "string") return { bytes: utf8(body), type: REQUEST_TEXT };
    if (isBytes(body)) return { bytes: toBytes(body).slice(), type: null };
    if (body instanceof URLSearchParams) return { bytes: utf8(body.toString()), type: FORM };
    if (typeof body === "object" && typeof body[Symbol.asyncIterator] === "function") {
      throw new TypeError("streamed bodies are not supported: pass a string or bytes");
    }
    return { bytes: utf8(String(body)), type: REQUEST_TEXT };
  }

  const EMPTY = new Uint8Array(0);

  class Body {
    get bodyUsed() {
      return Boolean(this._used);
    }
    _read() {
      define(this, "_used", true);
      return this._bytes();
    }
    async arrayBuffer() {
      const bytes = this._read();
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    }
    async bytes() {
      return new Uint8Array(await this.arrayBuffer());
    }
    async text() {
      return prim.decodeUtf8(this._read());
    }
    async json() {
      return JSON.parse(await this.text());
    }
    async formData() {
      throw new TypeError("formData() is not supported: read text() and use URLSearchParams");
    }
    async blob() {
      throw new TypeError("blob() is not supported: use arrayBuffer() or bytes()");
    }
  }

  const METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"]);
  const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
  const neverAborted = () => new AbortSignal(SIGNAL_KEY);

  class Request extends Body {
    constructor(input, init = {}) {
      super();
      if (arguments.length === 0) throw new TypeError("Request: 1 argument required");
      const options = init === null || init === undefined ? {} : init;
      const from = input instanceof Request ? input : null;
      let url = from ? from.url : input instanceof URL ? input.href : String(input);
      if (!options._raw) {
        const parsed = URL.parse(url);
        if (!parsed) throw new TypeError(`Request: invalid URL '${url}'`);
        if (parsed.username || parsed.password) {
          throw new TypeError("Request: a URL with credentials is not allowed");
        }
        url = parsed.href;
      }
      define(this, "_url", url);
      let method = options.method !== undefined ? String(options.method) : from ? from.method : "GET";
      if (!HEADER_NAME.test(method)) throw new TypeError(`Request: invalid method ${method}`);
      if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
        throw new TypeError(`Request: method ${method} is not allowed`);
      }
      method = METHODS.has(method.toUpperCase()) || options._raw ? method.toUpperCase() : method;
      define(this, "_method", method);
      define(this, "_headers", new Headers(options.headers !== undefined
        ? options.headers : from ? from.headers : undefined));
      let bytes = from ? from._body : null;
      if (options.body !== undefined && options.body !== null) {
        if ((method === "GET" || method === "HEAD") && !options._raw) {
          throw new TypeError("Request with GET/HEAD method cannot have body.");
        }
        const extracted = extractBody(options.body);
        bytes = extracted.bytes;
        if (extracted.type && !this._headers.has("content-type")) {
          this._headers.set("content-type", extracted.type);
        }
      } else if (options.body === null) {
        bytes = null;
      }
      define(this, "_body", bytes);
      define(this, "_signal", options.signal || (from ? from.signal : neverAborted()));
      const redirect = options.redirect || (from ? from.redirect : "follow");
      if (!["follow", "manual", "error"].includes(redirect)) {
        throw new TypeError(`Request: invalid redirect mode ${redirect}`);
      }
      define(this, "_redirect", redirect);
      // wasmlet's own conveniences: the path below the function, and the query.
      const query = url.indexOf("?");
      const hash = url.indexOf("#");
      const search = query < 0 ? "" : url.slice(query + 1, hash > query ? hash : undefined);
      const afterHost = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "");
      this.path = options._path || afterHost.split(/[?#]/)[0] || "/";
      this.searchParams = new URLSearchParams(search);
      this.query = Object.fromEntries(this.searchParams);
    }
    get url() {
      return this._url;
    }
    get method() {
      return this._method;
    }
    get headers() {
      return this._headers;
    }
    get signal() {
      return this._signal;
    }
    get redirect() {
      return this._redirect;
    }
    get body() {
      return this._body && this._body.length ? this._body : null;
    }
    get cache() {
      return "default";
    }
    get credentials() {
      return "same-origin";
    }
    get mode() {
      return "cors";
    }
    get destination() {
      return "";
    }
    get integrity() {
      return "";
    }
    get keepalive() {
      return false;
    }
    get referrer() {
      return "about:client";
    }
    get referrerPolicy() {
      return "";
    }
    _bytes() {
      return this._body || EMPTY;
    }
    clone() {
      return new Request(this, { _raw: true });
    }
  }
  tag(Request, "Request");

  const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
  const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

  class Response extends Body {
    constructor(body = null, init = {}) {
      super();
      const options = init === null || init === undefined ? {} : init;
      const status = options.status === undefined ? 200 : options.status;
      if (!options._raw && (!Number.isInteger(status) || status < 200 || status > 599)) {
        throw new RangeError(`Response: invalid status ${status} (it must be 200 to 599)`);
      }
      if (NULL_BODY_STATUS.has(status) && body !== null && body !== undefined && body !== "") {
        throw new TypeError(`Response: a ${status} response cannot have a body`);
      }
      define(this, "_status", status);
      define(this, "_statusText", options.statusText === undefined ? "" : String(options.statusText));
      define(this, "_headers", new Headers(options.headers));
      define(this, "_type", options._type || "default");
      define(this, "_url", options._url || "");
      define(this, "_redirected", Boolean(options._redirected));
      // The body as given: wasmlet sends an object or array as JSON (an extension;
      // Response.json is the standard way).
      this.body = body === undefined ? null : body;
      if (typeof body === "string" && !this._headers.has("content-type")) {
        this._headers.set("content-type", REQUEST_TEXT);
      } else if (body instanceof URLSearchParams && !this._headers.has("content-type")) {
        this._headers.set("content-type", FORM);
      }
    }
    get status() {
      return this._status;
    }
    get statusText() {
      return this._statusText;
    }
    get headers() {
      return this._headers;
    }
    get ok() {
      return this._status >= 200 && this._status < 300;
    }
    get type() {
      return this._type;
    }
    get url() {
      return this._url;
    }
    get redirected() {
      return this._redirected;
    }
    static json(data, init = {}) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("Response.json: the value is not JSON");
      const response = new Response(text, init);
      if (!init || !new Headers(init.headers).has("content-type")) {
        response.headers.set("content-type", JSON_TYPE);
      }
      return response;
    }
    static redirect(url, status = 302) {
      if (!REDIRECT_STATUS.has(status)) {
        throw new RangeError(`Response.redirect: invalid redirect status ${status}`);
      }
      const location = new URL(url).href;
      return new Response(null, { status, headers: { location } });
    }
    static error() {
      return new Response(null, { status: 0, _raw: true, _type: "error" });
    }
    _bytes() {
      return encodeBody(this.body).bytes;
    }
    clone() {
      const copy = new Response(this.body, {
        status: this._status, statusText: this._statusText, headers: this._headers, _raw: true,
        _type: this._type, _url: this._url, _redirected: this._redirected,
      });
      define(copy, "_fetched", this._fetched);
      return copy;
    }
  }
  tag(Response, "Response");

  // ---- fetch -------------------------------------------------------------------------

  // Headers the host sets itself: a request that sets one is refused by the host, so
  // fetch leaves them out (as browsers do with their forbidden request headers).
  const HOST_SET_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection",
    "keep-alive", "upgrade", "te", "trailer", "expect"]);
  const BODY_HEADERS = new Set(["content-type", "content-encoding", "content-language",
    "content-location"]);
  const MAX_REDIRECTS = 20;

  // A failed request, as Deno and Workers report one: a TypeError. Its message names
  // the reason (forbidden_host, connect_failed, timeout, too_large, invalid_request),
  // and `cause` holds the host's {type, message}.
  function networkError(error) {
    const failure = new TypeError(`fetch failed: ${error.type}: ${error.message}`);
    define(failure, "cause", { type: String(error.type), message: String(error.message) });
    return failure;
  }

  function sendOnce(method, url, headers, body, signal) {
    const head = {
      method,
      url,
      headers: headers._pairs.filter((pair) => !HOST_SET_HEADERS.has(pair[0]) &&
        !pair[0].startsWith("proxy-")),
    };
    const deadline = signal._deadline;
    if (Number.isFinite(deadline)) {
      head.timeout_ms = Math.min(86400000, Math.max(1, Math.ceil(deadline - prim.monotonicMs())));
    }
    const text = prim.httpRequest(JSON.stringify(head), body && body.length ? body : null);
    if (text === null) throw new TypeError("fetch failed: the host refused the request");
    const answer = JSON.parse(text);
    if (answer.error) {
      if (answer.error.type === "timeout" && Number.isFinite(deadline)) {
        // Only the signal sets a request's timeout: it ran out, so the signal aborts.
        signal._abort(timeoutError());
        throw signal.reason;
      }
      throw networkError(answer.error);
    }
    const bytes = new Uint8Array(prim.httpBody(answer.body_length));
    return { status: answer.status, headers: answer.headers, bytes };
  }

  async function fetch(input, init = undefined) {
    const request = new Request(input, init);
    const signal = request.signal;
    // The request goes out once the caller's synchronous code has run, so an abort()
    // right after fetch() still stops it. Once sent, the function waits for the answer.
    await undefined;
    let method = request.method;
    let url = request.url;
    let headers = new Headers(request.headers);
    if (!headers.has("accept")) headers.set("accept", "*/*");
    if (!headers.has("user-agent")) headers.set("user-agent", "wasmlet-fetch");
    let body = request._body;
    for (let redirects = 0; ; redirects++) {
      signal.throwIfAborted();
      const parsed = new URL(url);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
        throw new TypeError(`fetch failed: unsupported URL scheme ${parsed.protocol}`);
      }
      const answer = sendOnce(method, url, headers, body, signal);
      const response = new Response(answer.bytes.length ? answer.bytes : null, {
        status: answer.status, headers: answer.headers, _raw: true, _type: "basic",
        _url: url, _redirected: redirects > 0,
      });
      define(response, "_fetched", true);
      const location = response.headers.get("location");
      if (!REDIRECT_STATUS.has(answer.status) || location === null ||
          request.redirect === "manual") {
        return response;
      }
      if (request.redirect === "error") {
        throw new TypeError(`fetch failed: redirected to ${location} (redirect: "error")`);
      }
      if (redirects >= MAX_REDIRECTS) throw new TypeError("fetch failed: too many redirects");
      const next = URL.parse(location, url);
      if (!next) throw new TypeError(`fetch failed: invalid redirect location ${location}`);
      if ((answer.status === 303 && method !== "HEAD") ||
          ((answer.status === 301 || answer.status === 302) && method === "POST")) {
        method = "GET";
        body = null;
        for (const name of BODY_HEADERS) headers.delete(name);
      }
      if (next.origin !== new URL(url).origin) headers.delete("authorization");
      url = next.href;
    }
  }

  // ---- database ---------------------------------------------------------------------

  class DatabaseError extends Error {
    constructor(type, message) {
      super(message);
      this.name = "DatabaseError";
      this.type = type;
    }
  }

  const db = {
    async query(sql, params = []) {
      if (typeof sql !== "string") throw new TypeError("db.query: sql must be a string");
      if (!Array.isArray(params)) throw new TypeError("db.query: params must be an array");
      const text = prim.dbQuery(sql, JSON.stringify(params));
      if (text === null) {
        throw new DatabaseError("invalid_arguments", "db.query: the host refused the arguments");
      }
      const result = JSON.parse(text);
      if (result.error) throw new DatabaseError(result.error.type, result.error.message);
      const rows = result.rows;
      Object.defineProperty(rows, "rowCount", { value: result.row_count, enumerable: false });
      return rows;
    },
  };

  // ---- structuredClone ---------------------------------------------------------------

  const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

  function structuredClone(value, options = undefined) {
    if (arguments.length === 0) throw new TypeError("structuredClone: 1 argument required");
    const memory = new Map();
    const refuse = (what) => {
      throw new DOMException(`${what} could not be cloned.`, "DataCloneError");
    };
    const copy = (item) => {
      if (typeof item === "function") refuse(`function ${item.name || "anonymous"}`);
      if (typeof item === "symbol") refuse(String(item));
      if (typeof item !== "object" || item === null) return item;
      if (memory.has(item)) return memory.get(item);
      let out;
      if (item instanceof Boolean || item instanceof Number || item instanceof String ||
          item instanceof BigInt) {
        out = Object(item.valueOf());
      } else if (item instanceof Date) {
        out = new Date(item.getTime());
      } else if (item instanceof RegExp) {
        out = new RegExp(item.source, item.flags);
      } else if (item instanceof ArrayBuffer) {
        out = item.slice(0);
      } else if (ArrayBuffer.isView(item)) {
        const buffer = copy(item.buffer);
        out = item instanceof DataView
          ? new DataView(buffer, item.byteOffset, item.byteLength)
          : new item.constructor(buffer, item.byteOffset, item.length);
      } else if (item instanceof Map) {
        out = new Map();
        memory.set(item, out);
        for (const [key, entry] of item) out.set(copy(key), copy(entry));
        return out;
      } else if (item instanceof Set) {
        out = new Set();
        memory.set(item, out);
        for (const entry of item) out.add(copy(entry));
        return out;
      } else if (item instanceof Error) {
        const Ctor = ERRORS[item.name] || Error;
        out = new Ctor(item.message);
        if (!(item.name in ERRORS)) out.name = "Error";
        if (typeof item.stack === "string") define(out, "stack", item.stack);
        if ("cause" in item) define(out, "cause", copy(item.cause));
      } else if (item instanceof Promise || item instanceof WeakMap || item instanceof WeakSet ||
                 PLATFORM.has(item.constructor)) {
        refuse(Object.prototype.toString.call(item));
      } else {
        out = Array.isArray(item) ? new Array(item.length) : {};
        memory.set(item, out);
        for (const key of Object.keys(item)) out[key] = copy(item[key]);
        return out;
      }
      memory.set(item, out);
      return out;
    };
    if (options && options.transfer && [...options.transfer].length) {
      refuse("a transfer list (transferring is not supported)");
    }
    return copy(value);
  }

  // Objects of these classes are not serializable (as on the Web platform).
  const PLATFORM = new Set([Headers, Request, Response, URL, URLSearchParams, AbortSignal,
    AbortController, EventTarget, Event, TextEncoder, TextDecoder]);

  // ---- crypto, performance, process, Deno ------------------------------------------

  const crypto = {
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array ||
          array instanceof Float64Array || array instanceof DataView) {
        throw new DOMException("getRandomValues: expected an integer typed array",
          "TypeMismatchError");
      }
      const bytes = toBytes(array);
      if (bytes.byteLength > 65536) {
        throw new DOMException("getRandomValues: at most 65536 bytes at a time",
          "QuotaExceededError");
      }
      bytes.set(new Uint8Array(prim.randomBytes(bytes.byteLength)));
      return array;
    },
    randomUUID() {
      const b = new Uint8Array(prim.randomBytes(16));
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
  };

  let timeOrigin = 0; // set by start(): an invocation's time origin is its own
  const performance = {
    now: () => prim.monotonicMs() - timeOrigin,
  };

  const environment = {};
  const process = { env: environment };
  const hasOwn = (object, name) => Object.prototype.hasOwnProperty.call(object, name);

  // Deno.serve(handler), Deno.serve(options, handler), Deno.serve({handler, ...}):
  // called by the module's top level, it names the function's HTTP handler. Options
  // about listening (port, hostname, onListen, signal) mean nothing here; onError is
  // honoured.
  let served = null;
  let booted = false;

  function serve(first, second) {
    if (booted) throw new TypeError("Deno.serve: call it at the module's top level");
    if (served) throw new TypeError("Deno.serve: a function serves one handler; it was called twice");
    const options = typeof first === "function" ? {} : first || {};
    const handler = typeof first === "function" ? first : typeof second === "function"
      ? second : options.handler;
    if (typeof handler !== "function") throw new TypeError("Deno.serve: no handler function");
    const onError = typeof options.onError === "function" ? options.onError : null;
    served = async (request, info) => {
      try {
        return await handler(request, info);
      } catch (error) {
        if (!onError) throw error;
        return onError(error);
      }
    };
    const port = Number.isInteger(options.port) ? options.port : 8000;
    return {
      finished: new Promise(() => {}),
      addr: { transport: "tcp", hostname: options.hostname || "0.0.0.0", port },
      shutdown: async () => {},
      ref() {},
      unref() {},
    };
  }

  const Deno = {
    env: {
      get: (name) => (hasOwn(environment, name) ? environment[name] : undefined),
      set: (name, value) => {
        environment[String(name)] = String(value);
      },
      has: (name) => hasOwn(environment, name),
      delete: (name) => {
        delete environment[name];
      },
      toObject: () => ({ ...environment }),
    },
    serve,
  };

  // Work a handler hands over to run after its response (Workers' ctx.waitUntil,
  // Supabase's EdgeRuntime.waitUntil): the invocation ends once it has settled.
  let background = [];
  const waitUntil = (promise) => {
    background.push(Promise.resolve(promise).catch((error) => report(error)));
  };
  const EdgeRuntime = { waitUntil };

  for (const [name, value] of Object.entries({
    console, db, DatabaseError, Headers, Request, Response, URL, URLSearchParams, TextEncoder,
    TextDecoder, setTimeout, setInterval, clearTimeout, clearInterval: clearTimeout,
    queueMicrotask, crypto, performance, process, Deno, atob, btoa, fetch, structuredClone,
    AbortController, AbortSignal, Event, EventTarget, DOMException, EdgeRuntime,
  })) {
    define(globalThis, name, value);
  }
  define(Math, "random", prim.random);

  // ---- responses --------------------------------------------------------------------

  function encodeBody(body) {
    if (body === undefined || body === null) return { bytes: new Uint8Array(0), type: null };
    if (typeof body === "string") return { bytes: utf8(body), type: TEXT };
    if (isBytes(body)) return { bytes: toBytes(body), type: BYTES };
    if (body instanceof URLSearchParams) return { bytes: utf8(body.toString()), type: FORM };
    const text = JSON.stringify(body);
    return { bytes: utf8(text === undefined ? "" : text), type: JSON_TYPE };
  }

  const RESPONSE_KEYS = new Set(["status", "statusText", "headers", "body"]);
  // Framing headers of a fetched response that is sent on: the host sets its own.
  const FRAMING = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"]);

  // A Response, or a plain object made only of Response fields with at least a
  // status or a body (and an integer status, if any). Anything else is data.
  function responseLike(value) {
    if (value instanceof Response) return true;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return false;
    const keys = Object.keys(value);
    if (!keys.length || !keys.every((key) => RESPONSE_KEYS.has(key))) return false;
    if ("status" in value && !Number.isInteger(value.status)) return false;
    return "status" in value || "body" in value;
  }

  function send(value) {
    let status = 200;
    let headers = new Headers();
    let body = value;
    let fetched = false;
    if (value instanceof Response) {
      status = value.status;
      headers = value.headers;
      body = value.body;
      fetched = Boolean(value._fetched);
    } else if (responseLike(value)) {
      status = value.status === undefined ? 200 : value.status;
      headers = new Headers(value.headers);
      body = value.body;
    }
    const encoded = encodeBody(body);
    if (prim.setStatus(status) !== 0) throw new RangeError(`invalid status ${status}`);
    if (encoded.type && !headers.has("content-type")) headers.set("content-type", encoded.type);
    for (const [name, headerValue] of headers._pairs) {
      if (fetched && FRAMING.has(name)) continue;
      if (prim.setHeader(name, headerValue) !== 0) {
        prim.log(LOG_WARN, `response header refused by the host: ${name}`);
      }
    }
    if (encoded.bytes.byteLength) prim.write(1, encoded.bytes);
  }

  const MAX_FRAMES = 30;

  // A stack without the prelude's own frames (the same in every trace), and at most
  // MAX_FRAMES frames (a runaway recursion has thousands).
  function userStack(error) {
    const stack = typeof error.stack === "string" ? error.stack : "";
    const frames = stack.split("\n").filter((line) => line && !line.includes("(wasmlet:prelude"));
    if (frames.length > MAX_FRAMES) {
      const more = frames.length - MAX_FRAMES;
      frames.splice(MAX_FRAMES, more, `    ... ${more} more frames`);
    }
    return frames.length ? frames.join("\n") + "\n" : "";
  }

  function report(error) {
    let text;
    if (error instanceof Error) {
      const stack = userStack(error);
      text = `Uncaught ${error.name}: ${error.message}\n${stack}`;
    } else {
      text = `Uncaught ${inspect(error)}\n`;
    }
    if (!text.endsWith("\n")) text += "\n";
    prim.write(2, text);
    prim.log(LOG_ERROR, text.slice(0, -1));
  }

  globalThis.__wasmlet_describe = function (error) {
    if (error instanceof Error) {
      return { name: error.name, message: error.message, stack: String(error.stack || "") };
    }
    return { name: "Error", message: `uncaught value: ${inspect(error)}`, stack: "" };
  };

  // ---- entry points -----------------------------------------------------------------

  const REQUEST_KINDS = new Set(["http", "http_async"]);
  const SAFE_HOST = /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$/;

  // The Request an HTTP invocation (synchronous or queued) hands the handler.
  function incomingRequest(env) {
    const headers = JSON.parse(env.WASMLET_HTTP_HEADERS || "{}");
    const path = env.WASMLET_HTTP_PATH || "/";
    const query = env.WASMLET_HTTP_QUERY || "";
    const host = SAFE_HOST.test(headers.host || "") ? headers.host : "localhost";
    const name = env.WASMLET_FUNCTION || "function";
    const proto = headers["x-forwarded-proto"] === "https" ? "https" : "http";
    const raw = `${proto}://${host}/functions/v1/${name}${path === "/" ? "" : path}${query ? "?" + query : ""}`;
    const url = URL.parse(raw);
    return new Request(url ? url.href : raw, {
      method: env.WASMLET_HTTP_METHOD || "POST",
      headers,
      body: new Uint8Array(prim.readInput()),
      _path: path,
      _raw: true,
    });
  }

  // The Request a fetch-style handler (Deno.serve, export default {fetch}) gets for a
  // trigger that is not HTTP: the event as a JSON POST, as a database webhook sends it.
  function eventRequest(env, event) {
    const name = env.WASMLET_FUNCTION || "function";
    return new Request(`http://localhost/functions/v1/${name}`, {
      method: "POST",
      headers: { "content-type": JSON_TYPE },
      body: JSON.stringify(event),
      _raw: true,
    });
  }

  function connectionInfo(request) {
    const forwarded = request.headers.get("x-forwarded-for");
    const hostname = forwarded ? forwarded.split(",")[0].trim() : "0.0.0.0";
    return { remoteAddr: { transport: "tcp", hostname, port: 0 }, completed: new Promise(() => {}) };
  }

  function boot(ns, config) {
    delete globalThis.__wasmlet_describe;
    booted = true;
    const triggers = Array.isArray(config && config.triggers) ? config.triggers : [];
    const exported = {};
    for (const name of Object.keys(ns)) exported[name] = typeof ns[name];
    if (served) exported["Deno.serve"] = "function";

    // The function a trigger calls: the export it names, else `handler`, else the
    // handler given to Deno.serve, else the default export (a function, or an object
    // with a fetch method). A fetch-style handler always gets a Request.
    function resolve(trigger) {
      const named = trigger && typeof trigger.handler === "string" ? trigger.handler : null;
      const name = named || "handler";
      if (typeof ns[name] === "function") return { name, fn: ns[name] };
      if (named) return { name, fn: null };
      if (served) return { name: "Deno.serve", fn: served, fetchStyle: true };
      const fallback = ns.default;
      if (typeof fallback === "function") return { name: "default", fn: fallback };
      if (fallback && typeof fallback.fetch === "function") {
        const context = { waitUntil, passThroughOnException() {} };
        return {
          name: "default.fetch",
          fn: (req) => fallback.fetch(req, { ...environment }, context),
          fetchStyle: true,
        };
      }
      return { name, fn: null };
    }

    const problems = [];
    triggers.forEach((trigger, index) => {
      const found = resolve(trigger);
      if (!found.fn) {
        problems.push({
          trigger: index,
          type: trigger.type,
          handler: found.name,
          named: typeof trigger.handler === "string",
        });
      }
    });

    // A trigger's table is "table" or "schema.table" (as the registry stores it).
    function matches(trigger, event) {
      if (typeof trigger.table === "string" && typeof event.table === "string") {
        const dot = trigger.table.lastIndexOf(".");
        const table = trigger.table.slice(dot + 1);
        const schema = dot < 0 ? trigger.schema : trigger.table.slice(0, dot);
        if (table !== event.table) return false;
        if (schema != null && event.schema != null && schema !== event.schema) return false;
      }
      if (Array.isArray(trigger.events) && typeof event.type === "string") {
        const wanted = trigger.events.map((name) => String(name).toUpperCase());
        if (!wanted.includes(event.type.toUpperCase())) return false;
      }
      return true;
    }

    function pick(kind, event) {
      const candidates = triggers.filter((trigger) => trigger.type === kind);
      const trigger = candidates.find((item) => matches(item, event)) || candidates[0] || { type: kind };
      const found = resolve(trigger);
      if (!found.fn) throw new TypeError(`the module exports no function named ${found.name}`);
      return found;
    }

    let state = 0; // 0 running, STEP_DONE, STEP_FAILED
    let sent = false;

    function fail(error) {
      state = STEP_FAILED;
      report(error);
    }

    function finish(value) {
      try {
        send(value);
        sent = true;
      } catch (error) {
        fail(error);
        return;
      }
      // Work handed to waitUntil runs on; the invocation ends when it has settled.
      const pending = background;
      background = [];
      if (!pending.length) {
        state = STEP_DONE;
        return;
      }
      Promise.all(pending).then(() => {
        if (state === 0) state = STEP_DONE;
      });
    }

    function start() {
      timeOrigin = prim.monotonicMs();
      const env = prim.environ();
      for (const name of Object.keys(environment)) delete environment[name];
      Object.assign(environment, env);
      const kind = env.WASMLET_TRIGGER || "http";
      let pending;
      try {
        if (REQUEST_KINDS.has(kind)) {
          const found = pick("http", {});
          const request = incomingRequest(env);
          pending = found.fetchStyle ? found.fn(request, connectionInfo(request)) : found.fn(request);
        } else {
          const input = prim.decodeUtf8(new Uint8Array(prim.readInput()));
          const event = input.trim() ? JSON.parse(input) : {};
          const found = pick(kind, event);
          if (found.fetchStyle) {
            const request = eventRequest(env, event);
            pending = found.fn(request, connectionInfo(request));
          } else {
            pending = kind === "database" ? found.fn(event.record, event) : found.fn(event);
          }
        }
      } catch (error) {
        pending = Promise.reject(error);
      }
      Promise.resolve(pending).then(finish, fail);
    }

    function step() {
      if (state !== 0) return state;
      const now = prim.monotonicMs();
      const due = timers.filter((timer) => timer.due <= now).sort((a, b) => a.due - b.due || a.id - b.id);
      if (due.length) {
        const timer = due[0];
        if (timer.repeat) timer.due = now + Math.max(1, timer.ms);
        else clearTimeout(timer.id);
        try {
          timer.callback(...timer.args);
        } catch (error) {
          fail(error);
          return state;
        }
        return 0;
      }
      if (!timers.length) return sent ? STEP_DONE : STEP_IDLE; // sent: waitUntil work that cannot finish
      return Math.max(1, Math.ceil(Math.min(...timers.map((timer) => timer.due)) - now));
    }

    return { start, step, report: { ok: true, exports: exported, problems } };
  }

  return boot;
})();
