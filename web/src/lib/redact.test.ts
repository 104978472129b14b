import { describe, expect, it } from 'vitest';
import { maskAccount, maskEmails, redactSecrets } from './redact';

describe('redactSecrets', () => {
  it('removes the secret shapes the CPA simulator puts in failure bodies', () => {
    const body =
      'key sk-proj-Zx81LmQ2vB7nR4tY9wE3uI6oP0aS5dF1gH8jK2lC; x-api-key sk-ant-api03-Qm9vZ2xl-AbCdEfAA; ' +
      'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln; ' +
      'key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY; ghp_4f8Kx2LmQ9vB7nR4tY9wE3uI6oP0aS5dF1gH';
    const out = redactSecrets(body);
    expect(out).not.toMatch(/sk-proj|sk-ant|eyJ|AIza|ghp_/);
    expect(out).toContain('[redacted]');
    expect(out).toMatch(/^key \[redacted\]; x-api-key \[redacted\]/);
  });
  it('keeps ordinary text and handles empty input', () => {
    expect(redactSecrets('rate limit exceeded for org-7f3e21')).toBe(
      'rate limit exceeded for org-7f3e21',
    );
    expect(redactSecrets(undefined)).toBe('');
  });
});

describe('masking', () => {
  it('masks accounts and e-mails', () => {
    expect(maskAccount('alice@example.com')).toBe('a***@example.com');
    expect(maskAccount('my-project-123')).toBe('my-***');
    expect(maskAccount('ab')).toBe('a***');
    expect(maskEmails('token expired for alice@example.com.')).toBe(
      'token expired for a***@example.com.',
    );
  });
});
