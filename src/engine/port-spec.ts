// A node's connection point, shared with the canvas (web/ imports this file, so it imports nothing).

/** A connection point of a node: edges attach to it by name (React Flow's handle id). */
export interface PortSpec {
  name: string;
  label?: string;
  description?: string;
  /** The run cannot start unless an edge feeds this input. */
  required?: boolean;
  /** Several edges may feed this input; the node gets their values as an array, in edge order. */
  multiple?: boolean;
}
