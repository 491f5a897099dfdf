"""Training under tf.distribute / keras.distribution matches the undistributed run."""
