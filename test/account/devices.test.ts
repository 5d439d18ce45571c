import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskIp } from '../../src/account/place.ts';
import { parseUserAgent } from '../../src/account/user-agent.ts';

describe('how sessions are described', () => {
  it('names the browser and system from common User-Agent headers', () => {
    const cases: [string, string | undefined, string | undefined][] = [
      ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.0.0 Safari/537.36', 'Chrome', 'Linux'],
      ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51', 'Edge', 'Windows'],
      ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15', 'Safari', 'macOS'],
      ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1', 'Safari', 'iOS'],
      ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1', 'Chrome', 'iOS'],
      ['Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0', 'Firefox', 'Android'],
      ['Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36', 'Samsung Internet', 'Android'],
      ['Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 'Chrome', 'ChromeOS'],
      ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0', 'Opera', 'Windows'],
      ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', 'Firefox', 'Linux'],
      ['node', undefined, undefined],
      ['', undefined, undefined],
    ];
    for (const [ua, browser, os] of cases) assert.deepEqual(parseUserAgent(ua), { browser, os }, ua);
    assert.deepEqual(parseUserAgent(null), { browser: undefined, os: undefined });
    assert.deepEqual(parseUserAgent(`${'Chrome/1 '.repeat(100000)}`), { browser: 'Chrome', os: undefined }, 'a huge header is cut, not a hang');
  });

  it('masks the host part of an address', () => {
    assert.equal(maskIp('203.0.113.77'), '203.0.113.x');
    assert.equal(maskIp('::ffff:198.51.100.9'), '198.51.100.x');
    assert.equal(maskIp('2001:db8:85a3:8d3:1319:8a2e:370:7348'), '2001:db8:85a3:8d3:x:x:x:x');
    assert.equal(maskIp('2001:db8::1'), '2001:db8:0:0:x:x:x:x');
    assert.equal(maskIp('::1'), '0:0:0:0:x:x:x:x');
    assert.equal(maskIp('not an ip'), undefined);
    assert.equal(maskIp(null), undefined);
  });
});
