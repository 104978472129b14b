// ECharts wrapper, tree-shaken to bar/line/pie/heatmap + canvas renderer. Re-themes on
// dark/light change, resizes with its container, disposes on unmount.
import { useEffect, useRef } from 'preact/hooks';
import * as echarts from 'echarts/core';
import { BarChart, HeatmapChart, LineChart, PieChart } from 'echarts/charts';
import {
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import type { EChartsCoreOption } from 'echarts/core';
import { resolvedThemeStore } from '../lib/theme';
import { useStore } from '../lib/store';

echarts.use([
  BarChart,
  LineChart,
  PieChart,
  HeatmapChart,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapComponent,
  CanvasRenderer,
]);

export function Chart(props: { option: EChartsCoreOption; height?: number; label: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  const theme = useStore(resolvedThemeStore);

  useEffect(() => {
    if (!ref.current) return undefined;
    const c = echarts.init(ref.current, theme === 'dark' ? 'dark' : undefined, {
      renderer: 'canvas',
    });
    chart.current = c;
    const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => c.resize()) : null;
    ro?.observe(ref.current);
    return () => {
      ro?.disconnect();
      c.dispose();
      chart.current = null;
    };
  }, [theme]);

  useEffect(() => {
    chart.current?.setOption(
      { backgroundColor: 'transparent', animationDuration: 300, ...props.option },
      { notMerge: true },
    );
  }, [props.option, theme]);

  return (
    <div
      ref={ref}
      class="chart"
      role="img"
      aria-label={props.label}
      style={{ height: `${props.height ?? 260}px` }}
    />
  );
}

export const kPalette = [
  '#3b82f6',
  '#10b981',
  '#f59e0b',
  '#ef4444',
  '#8b5cf6',
  '#06b6d4',
  '#ec4899',
  '#84cc16',
];
