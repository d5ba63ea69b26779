/** What {@link watchPresence} calls when the tab goes away and comes back. */
export interface PresenceHandlers {
  /** The tab is hidden or being unloaded: leave cleanly, now (the page may be frozen next). */
  leave(why: 'hidden' | 'pagehide'): void;
  /** The tab is visible again (or restored from the back/forward cache): join again. */
  rejoin(): void;
}

/**
 * Ties the session to the tab being in front of someone. A hidden tab is throttled, may be
 * frozen or discarded and would miss round deadlines, so it leaves at once (the coordinator
 * counts it as a dropout, which secure aggregation is built to tolerate) instead of holding a
 * round up; it rejoins with the same identity and data when shown again. `pagehide` covers
 * closing, navigating away and entering the back/forward cache. Returns a function that stops
 * watching.
 */
export function watchPresence(handlers: PresenceHandlers): () => void {
  const onVisibility = (): void => {
    if (document.visibilityState === 'hidden') handlers.leave('hidden');
    else handlers.rejoin();
  };
  const onPageHide = (): void => handlers.leave('pagehide');
  const onPageShow = (event: PageTransitionEvent): void => {
    if (event.persisted && document.visibilityState === 'visible') handlers.rejoin();
  };
  document.addEventListener('visibilitychange', onVisibility);
  window.addEventListener('pagehide', onPageHide);
  window.addEventListener('pageshow', onPageShow);
  return () => {
    document.removeEventListener('visibilitychange', onVisibility);
    window.removeEventListener('pagehide', onPageHide);
    window.removeEventListener('pageshow', onPageShow);
  };
}
