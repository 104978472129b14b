// Usage analytics tabs and the `include` sections each one asks for (only those).
import type { AnalyticsInclude } from '../api/monitoring';

export type AnalyticsTab = 'overview' | 'trends' | 'models' | 'apiKeys' | 'credentials' | 'heatmap';
export const kAnalyticsTabs: AnalyticsTab[] = [
  'overview',
  'trends',
  'models',
  'apiKeys',
  'credentials',
  'heatmap',
];

export function analyticsIncludeForTab(
  tab: AnalyticsTab,
  granularity: 'auto' | 'hour' | 'day',
): AnalyticsInclude {
  switch (tab) {
    case 'overview':
      return {
        summary: true,
        summary_profile: 'compact',
        summary_percentiles: true,
        summary_comparison: true,
        anomaly_points: true,
        granularity,
      };
    case 'trends':
      return { timeline: true, granularity };
    case 'models':
      return { model_stats: true };
    case 'apiKeys':
      return { api_key_stats: true };
    case 'credentials':
      // channel_share is the fallback for servers that do not compute credential_stats yet.
      return { credential_stats: true, channel_share: true };
    case 'heatmap':
      return { heatmap: true };
  }
}
