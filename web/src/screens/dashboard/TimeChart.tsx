/**
 * A time series drawn by uPlot (canvas, small and fast): one line per series over shared timestamps, as wide as its
 * container, in the colour scheme's colours (redrawn when it changes). A caption names it; the legend under it is a
 * table of the values at the cursor, readable without the picture.
 */
import "uplot/dist/uPlot.min.css"
import { useComputedColorScheme } from "@mantine/core"
import { useEffect, useRef } from "react"
import uPlot from "uplot"

export interface Line {
  readonly label: string
  /** A Mantine colour name (blue, teal, red…); its shade 6, or 4 in the dark scheme. */
  readonly colour: string
  readonly values: ReadonlyArray<number | null>
  /** Formats a value for the axis and the legend. */
  readonly format?: (value: number) => string
  /** A value per minute that may be missing (null): its points are drawn and joined across the gaps. */
  readonly sparse?: boolean
}

const cssVar = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim()

export const TimeChart = ({ times, lines, caption, height = 220 }: {
  /** Epoch milliseconds, oldest first. */
  readonly times: ReadonlyArray<number>
  readonly lines: ReadonlyArray<Line>
  readonly caption: string
  readonly height?: number
}) => {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | undefined>(undefined)
  const scheme = useComputedColorScheme("light")
  const data: uPlot.AlignedData = [times.map((t) => t / 1000), ...lines.map((l) => [...l.values])]
  const shape = lines.map((l) => l.label).join("|")

  useEffect(() => {
    const target = box.current
    if (target === null) return
    const shade = scheme === "dark" ? 4 : 6
    const text = cssVar("--mantine-color-text") || (scheme === "dark" ? "#c9c9c9" : "#212529")
    const grid = cssVar(scheme === "dark" ? "--mantine-color-dark-4" : "--mantine-color-gray-3") || "#dee2e6"
    const format = lines[0]?.format
    const chart = new uPlot({
      width: Math.max(240, target.clientWidth),
      height,
      scales: { x: { time: true } },
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: cssVar(`--mantine-color-${l.colour}-${shade}`) || l.colour,
          width: 2,
          ...(l.sparse === true ? { spanGaps: true, points: { show: true, size: 5 } } : { points: { show: false } }),
          ...(l.format !== undefined ? { value: (_: uPlot, v: number | null) => v === null ? "–" : (l.format?.(v) ?? String(v)) } : {})
        }))
      ],
      axes: [
        { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        {
          stroke: text,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          size: format !== undefined ? 68 : 56,
          ...(format !== undefined ? { values: (_: uPlot, ticks: Array<number>) => ticks.map(format) } : {})
        }
      ]
    }, data, target)
    plot.current = chart
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(240, target.clientWidth), height }))
    resize.observe(target)
    return () => {
      resize.disconnect()
      chart.destroy()
      plot.current = undefined
    }
    // Rebuilt only when the lines (their `shape`) or the colour scheme change; new values go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, scheme, height])

  useEffect(() => {
    plot.current?.setData(data)
  })

  return (
    <figure style={{ margin: 0 }}>
      <figcaption className="visually-hidden">{caption}</figcaption>
      <div ref={box} role="img" aria-label={caption} />
    </figure>
  )
}
