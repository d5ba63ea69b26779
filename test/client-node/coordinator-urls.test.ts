import { coordinatorUrls } from '../../client-node/coordinator-urls';
import { isCohortError } from '../../shared/errors';

describe('--server', () => {
  test('one URL, or a cluster given as a comma-separated list (spaces and empty entries ignored)', () => {
    expect(coordinatorUrls('http://a:8080')).toEqual(['http://a:8080']);
    expect(coordinatorUrls('http://a:8080, https://b:8443/,,http://c')).toEqual([
      'http://a:8080',
      'https://b:8443/',
      'http://c',
    ]);
  });

  test.each([[''], [' , '], ['a:8080'], ['ws://a:8080'], ['http://a:8080,ftp://b']])(
    'refuses %j with CONFIG_INVALID',
    (server) => {
      let error: unknown;
      try {
        coordinatorUrls(server);
      } catch (e) {
        error = e;
      }
      expect(isCohortError(error, 'CONFIG_INVALID')).toBe(true);
    },
  );
});
