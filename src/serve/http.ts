/**
 * HTTP plumbing shared by every endpoint: OpenAI-shaped errors, JSON responses, a body reader that
 * enforces the size limit while reading (a missing or lying Content-Length cannot get past it), and the
 * optional Bearer API key.
 */
import { timingSafeEqual } from "node:crypto";

/** An error the client caused (or a limit it hit); becomes `{error: {message, type, param, code}}` with this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  405: "invalid_request_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  421: "invalid_request_error",
  429: "rate_limit_error",
};

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

export function errorResponse(e: HttpError): Response {
  const headers: Record<string, string> = e.status === 429 ? { "retry-after": "1" } : e.status === 401 ? { "www-authenticate": "Bearer" } : {};
  return json({ error: { message: e.message, type: ERROR_TYPES[e.status] ?? "server_error", param: e.param, code: e.code } }, e.status, headers);
}

/**
 * The content types an HTML form or a no-CORS fetch may send from any web page without asking first:
 * refusing them keeps other sites open in the user's browser from driving a server on localhost.
 */
const CROSS_SITE_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"];

const LOOPBACK_NAMES = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** Whether `host` (a --host value) accepts connections from this machine only. */
export const isLoopback = (host: string) => LOOPBACK_NAMES.test(host) || host === "::1";

/**
 * DNS rebinding guard for a server bound to loopback: a page on another site can point its own name at
 * 127.0.0.1, but the browser still sends that name in Host, so only loopback names are served.
 */
export function checkLoopbackHost(req: Request): void {
  const name = (req.headers.get("host") ?? "").replace(/:\d+$/, "");
  if (!LOOPBACK_NAMES.test(name)) throw new HttpError(421, `Host "${name}" is not this server's: a server bound to loopback answers only localhost, 127.0.0.1 or [::1]`, null, "misdirected_request");
}

/** Reads a JSON object body of at most maxBytes bytes. */
export async function readJsonBody(req: Request, maxBytes: number): Promise<Record<string, unknown>> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (CROSS_SITE_TYPES.includes(type)) throw new HttpError(415, `Content-Type ${type} is not accepted; send the JSON body with Content-Type: application/json`, null, "unsupported_media_type");
  const tooLarge = () => new HttpError(413, `request body is larger than the limit of ${maxBytes} bytes (see --max-body-bytes)`, null, "body_too_large");
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    for await (const chunk of req.body) {
      size += chunk.byteLength;
      if (size > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new HttpError(400, "request body is not valid UTF-8", null, "invalid_json");
  }
  if (!text.trim()) throw new HttpError(400, "request body is empty; expected a JSON object", null, "invalid_json");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON (${(e as Error).message}); expected a JSON object`, null, "invalid_json");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, `request body must be a JSON object, got ${Array.isArray(value) ? "an array" : typeof value === "object" ? "null" : `a ${typeof value}`}`, null, "invalid_json");
  }
  return value as Record<string, unknown>;
}

/** Throws 401 unless the request carries `Authorization: Bearer <apiKey>`; no key configured means no check. */
export function checkApiKey(req: Request, apiKey: string | undefined): void {
  if (!apiKey) return;
  const header = req.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m) throw new HttpError(401, "missing API key: send the header `Authorization: Bearer <key>`", null, "missing_api_key");
  const given = Buffer.from(m[1]!);
  const want = Buffer.from(apiKey);
  // Compare in constant time so the key cannot be guessed byte by byte from response times.
  if (given.length !== want.length || !timingSafeEqual(given, want)) throw new HttpError(401, "incorrect API key", null, "invalid_api_key");
}
