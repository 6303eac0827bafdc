// wasmlet's JavaScript prelude: the programming model on top of QuickJS.
//
// Evaluated once at deploy, inside the engine, before the function's module; its
// completion value is boot(namespace, config). Everything it sets up is captured by
// the memory snapshot, so an invocation pays only for start() and step().
//
// The C glue (c/wasmlet_js.c) hands over its primitives as `globalThis.__wasmlet`;
// they are captured here and removed from the global object.
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

  const define = (target, name, value) =>
    Object.defineProperty(target, name, { value, writable: true, configurable: true });

  // ---- text and bytes ---------------------------------------------------------

  function toBytes(value) {
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    if (ArrayBuffer.isView(value)) {
      return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    }
    throw new TypeError("expected an ArrayBuffer or a typed array");
  }

  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return new Uint8Array(prim.encodeUtf8(String(input)));
    }
  }

  class TextDecoder {
    constructor(label = "utf-8") {
      const name = String(label).toLowerCase();
      if (name !== "utf-8" && name !== "utf8") {
        throw new RangeError(`TextDecoder: only utf-8 is supported, not ${label}`);
      }
    }
    get encoding() {
      return "utf-8";
    }
    decode(input) {
      return input === undefined ? "" : prim.decodeUtf8(toBytes(input));
    }
  }

  const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  function btoa(input) {
    const text = String(input);
    let out = "";
    for (let i = 0; i < text.length; i += 3) {
      const a = text.charCodeAt(i);
      const b = text.charCodeAt(i + 1);
      const c = text.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) {
        throw new Error("btoa: the string has characters outside Latin-1");
      }
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += BASE64[n >> 18] + BASE64[(n >> 12) & 63];
      out += i + 1 < text.length ? BASE64[(n >> 6) & 63] : "=";
      out += i + 2 < text.length ? BASE64[n & 63] : "=";
    }
    return out;
  }

  function atob(input) {
    const text = String(input).replace(/[\t\n\f\r ]/g, "").replace(/=+$/, "");
    let out = "";
    let bits = 0;
    let value = 0;
    for (const ch of text) {
      const index = BASE64.indexOf(ch);
      if (index < 0) throw new Error("atob: the string is not valid base64");
      value = (value << 6) | index;
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

  // ---- Fetch-style Headers, Request and Response ---------------------------------

  const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

  function headerName(name) {
    const text = String(name);
    if (!HEADER_NAME.test(text)) throw new TypeError(`invalid header name: ${text}`);
    return text.toLowerCase();
  }

  class Headers {
    constructor(init) {
      this._pairs = [];
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        this._pairs = init._pairs.map((pair) => [pair[0], pair[1]]);
      } else if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) this.append(pair[0], pair[1]);
      } else if (typeof init === "object") {
        for (const name of Object.keys(init)) this.append(name, init[name]);
      } else {
        throw new TypeError("Headers: expected an object or a list of pairs");
      }
    }
    append(name, value) {
      this._pairs.push([headerName(name), String(value)]);
    }
    set(name, value) {
      const key = headerName(name);
      this._pairs = this._pairs.filter((pair) => pair[0] !== key);
      this._pairs.push([key, String(value)]);
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
    *entries() {
      const names = [...new Set(this._pairs.map((pair) => pair[0]))].sort();
      for (const name of names) yield [name, this.get(name)];
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

  class URLSearchParams {
    constructor(init = "") {
      this._pairs = [];
      if (typeof init === "string") {
        const text = init.startsWith("?") ? init.slice(1) : init;
        for (const part of text.split("&")) {
          if (!part) continue;
          const eq = part.indexOf("=");
          const name = eq < 0 ? part : part.slice(0, eq);
          const value = eq < 0 ? "" : part.slice(eq + 1);
          this._pairs.push([decodeQuery(name), decodeQuery(value)]);
        }
      } else if (init && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) this._pairs.push([String(pair[0]), String(pair[1])]);
      } else if (init && typeof init === "object") {
        for (const name of Object.keys(init)) this._pairs.push([name, String(init[name])]);
      }
    }
    get(name) {
      const found = this._pairs.find((pair) => pair[0] === name);
      return found ? found[1] : null;
    }
    getAll(name) {
      return this._pairs.filter((pair) => pair[0] === name).map((pair) => pair[1]);
    }
    has(name) {
      return this._pairs.some((pair) => pair[0] === name);
    }
    append(name, value) {
      this._pairs.push([String(name), String(value)]);
    }
    set(name, value) {
      this.delete(name);
      this.append(name, value);
    }
    delete(name) {
      this._pairs = this._pairs.filter((pair) => pair[0] !== name);
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
      return this._pairs
        .map((pair) => `${encodeURIComponent(pair[0])}=${encodeURIComponent(pair[1])}`)
        .join("&");
    }
  }

  function decodeQuery(text) {
    const spaced = text.replace(/\+/g, " ");
    try {
      return decodeURIComponent(spaced);
    } catch (error) {
      return spaced;
    }
  }

  class Body {
    async arrayBuffer() {
      const bytes = this._bytes();
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    }
    async bytes() {
      return new Uint8Array(await this.arrayBuffer());
    }
    async text() {
      return prim.decodeUtf8(this._bytes());
    }
    async json() {
      return JSON.parse(await this.text());
    }
  }

  class Request extends Body {
    constructor(input, init = {}) {
      super();
      this.url = String(input);
      this.method = String(init.method || "GET").toUpperCase();
      this.headers = new Headers(init.headers);
      const query = this.url.indexOf("?");
      const afterHost = this.url.replace(/^[a-z]+:\/\/[^/]*/i, "");
      this.path = init.path || (query < 0 ? afterHost : afterHost.split("?")[0]) || "/";
      this.searchParams = new URLSearchParams(query < 0 ? "" : this.url.slice(query + 1));
      this.query = Object.fromEntries(this.searchParams);
      this._body = init.body === undefined || init.body === null ? new Uint8Array(0) : init.body;
    }
    _bytes() {
      const body = this._body;
      return typeof body === "string" ? new Uint8Array(prim.encodeUtf8(body)) : toBytes(body);
    }
  }

  class Response extends Body {
    constructor(body = null, init = {}) {
      super();
      const status = init.status === undefined ? 200 : init.status;
      if (!Number.isInteger(status) || status < 100 || status > 599) {
        throw new RangeError(`Response: invalid status ${status}`);
      }
      this.status = status;
      this.statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.headers = new Headers(init.headers);
      this.body = body;
    }
    get ok() {
      return this.status >= 200 && this.status < 300;
    }
    static json(data, init = {}) {
      const response = new Response(JSON.stringify(data), init);
      if (!response.headers.has("content-type")) response.headers.set("content-type", JSON_TYPE);
      return response;
    }
    _bytes() {
      return encodeBody(this.body).bytes;
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

  // ---- crypto, performance, process ------------------------------------------------

  const crypto = {
    getRandomValues(array) {
      const bytes = toBytes(array);
      if (bytes.byteLength > 65536) {
        throw new RangeError("getRandomValues: at most 65536 bytes at a time");
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
  const Deno = {
    env: {
      get: (name) =>
        Object.prototype.hasOwnProperty.call(environment, name) ? environment[name] : undefined,
      toObject: () => ({ ...environment }),
    },
  };

  for (const [name, value] of Object.entries({
    console, db, DatabaseError, Headers, Request, Response, URLSearchParams, TextEncoder,
    TextDecoder, setTimeout, setInterval, clearTimeout, clearInterval: clearTimeout,
    queueMicrotask, crypto, performance, process, Deno, atob, btoa,
  })) {
    define(globalThis, name, value);
  }
  define(Math, "random", prim.random);

  // ---- responses --------------------------------------------------------------------

  function encodeBody(body) {
    if (body === undefined || body === null) return { bytes: new Uint8Array(0), type: null };
    if (typeof body === "string") return { bytes: new Uint8Array(prim.encodeUtf8(body)), type: TEXT };
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
      return { bytes: toBytes(body), type: BYTES };
    }
    const text = JSON.stringify(body);
    return {
      bytes: new Uint8Array(prim.encodeUtf8(text === undefined ? "" : text)),
      type: JSON_TYPE,
    };
  }

  const RESPONSE_KEYS = new Set(["status", "statusText", "headers", "body"]);

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
    if (responseLike(value)) {
      const response = value instanceof Response ? value : new Response(value.body, value);
      status = response.status;
      headers = response.headers;
      body = response.body;
    }
    const encoded = encodeBody(body);
    if (prim.setStatus(status) !== 0) throw new RangeError(`invalid status ${status}`);
    if (encoded.type && !headers.has("content-type")) headers.set("content-type", encoded.type);
    for (const [name, headerValue] of headers._pairs) {
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

  function boot(ns, config) {
    delete globalThis.__wasmlet_describe;
    const triggers = Array.isArray(config && config.triggers) ? config.triggers : [];
    const exported = {};
    for (const name of Object.keys(ns)) exported[name] = typeof ns[name];

    // The function a trigger calls: the export it names, else `handler`, else the
    // default export (a function, or an object with a fetch method for http).
    function resolve(trigger) {
      const named = trigger && typeof trigger.handler === "string" ? trigger.handler : null;
      const name = named || "handler";
      if (typeof ns[name] === "function") return { name, fn: ns[name] };
      if (named) return { name, fn: null };
      const fallback = ns.default;
      if (typeof fallback === "function") return { name: "default", fn: fallback };
      if (fallback && typeof fallback.fetch === "function" && trigger.type === "http") {
        return { name: "default.fetch", fn: (req) => fallback.fetch(req) };
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
      return found.fn;
    }

    let state = 0; // 0 running, STEP_DONE, STEP_FAILED

    function fail(error) {
      state = STEP_FAILED;
      report(error);
    }

    function finish(value) {
      try {
        send(value);
        state = STEP_DONE;
      } catch (error) {
        fail(error);
      }
    }

    function start() {
      timeOrigin = prim.monotonicMs();
      const env = prim.environ();
      for (const name of Object.keys(environment)) delete environment[name];
      Object.assign(environment, env);
      const kind = env.WASMLET_TRIGGER || "http";
      let pending;
      try {
        if (kind === "http") {
          const fn = pick("http", {});
          const headers = JSON.parse(env.WASMLET_HTTP_HEADERS || "{}");
          const path = env.WASMLET_HTTP_PATH || "/";
          const query = env.WASMLET_HTTP_QUERY || "";
          const host = headers.host || "localhost";
          const name = env.WASMLET_FUNCTION || "function";
          const url = `http://${host}/functions/v1/${name}${path === "/" ? "" : path}${query ? "?" + query : ""}`;
          const request = new Request(url, {
            method: env.WASMLET_HTTP_METHOD || "POST",
            headers,
            path,
            body: new Uint8Array(prim.readInput()),
          });
          pending = fn(request);
        } else {
          const input = prim.decodeUtf8(new Uint8Array(prim.readInput()));
          const event = input.trim() ? JSON.parse(input) : {};
          const fn = pick(kind, event);
          pending = kind === "database" ? fn(event.record, event) : fn(event);
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
      if (!timers.length) return STEP_IDLE;
      return Math.max(1, Math.ceil(Math.min(...timers.map((timer) => timer.due)) - now));
    }

    return { start, step, report: { ok: true, exports: exported, problems } };
  }

  return boot;
})();
