/**
 * The viewer's token: taken from the URL fragment (#token=..., as `vae up` prints it), kept
 * in sessionStorage (this tab only, gone when it closes) and taken out of the address bar, so
 * it is neither bookmarked nor shared with a view. Sent as ?token= on every socket and
 * fetch (browsers cannot set headers on a WebSocket). Missing or expired: the page asks.
 */

const KEY = "vae.token";
const SKEW_MS = 30_000; // the gateway's leeway on expiry

/** Move a #token=... of `location` into session storage; the token now in use (or ""). */
export function adoptToken(location, storage = sessionStorage, history = window.history) {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const given = params.get("token");
  if (given) {
    storage.setItem(KEY, given.trim());
    params.delete("token");
    const rest = params.toString().replaceAll("%2C", ",");
    history.replaceState(null, "", rest ? `#${rest}` : location.pathname + location.search);
  }
  return storage.getItem(KEY) || "";
}

export function currentToken(storage = sessionStorage) {
  return storage.getItem(KEY) || "";
}

export function saveToken(token, storage = sessionStorage) {
  storage.setItem(KEY, token.trim());
}

/** A JWT's claims (not verified: the gateway does that), or null when unreadable. */
export function claimsOf(token) {
  try {
    const body = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(atob(body + "=".repeat((4 - (body.length % 4)) % 4)));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

/** Seconds since the epoch at which a JWT expires, or null when it says nothing readable. */
export function expiryOf(token) {
  const claims = claimsOf(token);
  return claims && Number.isFinite(claims.exp) ? claims.exp : null;
}

/** A token's scopes: the `scope` claim (space-separated) or `scp` (a list), as the gateway reads them. */
export function scopesOf(token) {
  const claims = claimsOf(token) || {};
  if (typeof claims.scope === "string") return claims.scope.split(/\s+/).filter(Boolean);
  if (Array.isArray(claims.scp)) return claims.scp.filter((s) => typeof s === "string");
  return [];
}

/**
 * Why this token cannot save rules ("" when it has the admin scope, or when there is no
 * readable token: a gateway with auth off takes anything, and one with auth on says no).
 */
export function adminProblem(token = currentToken()) {
  if (!token || !claimsOf(token)) return "";
  const scopes = scopesOf(token);
  if (scopes.includes("admin")) return "";
  const has = scopes.length ? `this one has ${scopes.join(" ")}` : "this one has no scopes";
  return `Saving rules needs a token with the admin scope (${has}).`;
}

/** Why the page must ask for a token ("" when the one it has looks usable). */
export function tokenProblem(token, nowMs = Date.now()) {
  if (!token) return "This gateway needs a token to show its streams.";
  const exp = expiryOf(token);
  if (exp === null) return "The token given is not one this viewer can read.";
  if (exp * 1000 + SKEW_MS < nowMs) return "The token has expired.";
  return "";
}

/** `url` with the current token as its ?token= parameter (unchanged when there is none). */
export function withToken(url, token = currentToken()) {
  if (!token) return url;
  const parsed = new URL(url, location.href);
  parsed.searchParams.set("token", token);
  return parsed.href;
}

/**
 * Show the token dialog with `reason`; a token pasted there is kept and the page reloads
 * with it. Never shown twice at once.
 */
export function askForToken(reason, doc = document) {
  const dialog = doc.getElementById("token-dialog");
  if (!dialog || dialog.open) return;
  doc.getElementById("token-reason").textContent = reason;
  const form = doc.getElementById("token-form");
  form.onsubmit = (event) => {
    event.preventDefault();
    const value = doc.getElementById("token-input").value.trim();
    if (!value) return;
    saveToken(value);
    dialog.close();
    location.reload();
  };
  dialog.showModal();
}
