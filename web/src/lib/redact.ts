// Display-side hygiene for failure evidence and account names. The server already redacts
// `fail_summary` (cpamp-storage.md: secrets → `[redacted]`, e-mail local parts masked); this is
// defence in depth so a secret that slipped through is never painted, plus the optional
// account masking of the monitoring page.

const kSecretPatterns: RegExp[] = [
  /\b(?:sk|rk|pk)-[A-Za-z0-9_-]{12,}/g, // OpenAI / Anthropic style keys (sk-proj-…, sk-ant-…)
  /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi, // Authorization header values
  /\bAIza[0-9A-Za-z_-]{20,}/g, // Google API keys
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g, // GitHub tokens
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, // JWTs
  /\bxox[abpr]-[A-Za-z0-9-]{10,}/g, // Slack tokens
];

/** Replaces anything that looks like a credential with `[redacted]`. */
export function redactSecrets(text: string | null | undefined): string {
  if (!text) return '';
  let out = text;
  for (const re of kSecretPatterns) out = out.replace(re, '[redacted]');
  return out;
}

/** `alice@example.com` → `a***@example.com`; other strings keep 3 characters. */
export function maskAccount(value: string | null | undefined): string {
  if (!value) return '';
  const at = value.indexOf('@');
  if (at > 0) return `${value.slice(0, 1)}***${value.slice(at)}`;
  if (value.length <= 4) return `${value.slice(0, 1)}***`;
  return `${value.slice(0, 3)}***`;
}

/** Masks every e-mail address inside free text (used on failure evidence). */
export function maskEmails(text: string): string {
  return text.replace(
    /\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b/g,
    (_m, first: string, domain: string) => `${first}***@${domain}`,
  );
}
